import WispCore

/// The identifying start of an ELF file (System V gABI: e_ident, e_type, e_machine), enough
/// to say which CPU a guest's own programs are built for when its kernel does not say.
public struct ELFHeader: Sendable, Equatable {
    /// 1 = ELFCLASS32, 2 = ELFCLASS64.
    public var fileClass: UInt8
    /// 1 = little endian, 2 = big endian.
    public var dataEncoding: UInt8
    public var machine: UInt16

    /// Bytes of the file's head this parser needs.
    public static let headLength = 20

    public init(_ bytes: [UInt8], source: String) throws {
        let r = ByteReader(bytes, source: source, structure: "ELF header")
        guard try r.array(0, 4) == [0x7f, 0x45, 0x4c, 0x46] else { throw r.error(at: 0, "no \"\\x7fELF\" magic") }
        fileClass = try r.u8(4)
        dataEncoding = try r.u8(5)
        guard fileClass == 1 || fileClass == 2 else { throw r.error(at: 4, "ELF class \(fileClass) is neither 32- nor 64-bit") }
        switch dataEncoding {
        case 1: machine = try r.u16le(18)
        case 2: machine = try r.u16be(18)
        default: throw r.error(at: 5, "ELF data encoding \(dataEncoding) is neither little nor big endian")
        }
    }

    /// The guest architecture of a 64-bit little-endian executable; nil for anything Wisp
    /// has no name for (32-bit, big-endian, other CPUs).
    public var architecture: GuestArchitecture? {
        guard fileClass == 2, dataEncoding == 1 else { return nil }
        return GuestArchitecture(elfMachine: machine)
    }
}
