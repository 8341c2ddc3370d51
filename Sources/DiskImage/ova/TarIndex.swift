import WispCore

/// The regular-file members of a tar archive (ustar, GNU long names, pax paths), found by
/// walking headers without extracting anything: each member is a `SliceBlockDevice` over
/// the archive. Hostile-safe: sizes are checked against the archive, member count capped.
public struct TarIndex: Sendable {
    public static let maxMembers = 10_000

    public struct Member: Sendable, Equatable {
        public let name: String
        public let offset: UInt64
        public let size: UInt64
    }

    public let archiveName: String
    public let members: [Member]

    public init(_ archive: any BlockDevice) throws {
        archiveName = archive.name
        var members: [Member] = []
        var position: UInt64 = 0
        var pendingName: String?
        var zeroBlocks = 0
        while position + 512 <= archive.size {
            let h = try archive.read(at: position, count: 512)
            if h.allSatisfy({ $0 == 0 }) {
                zeroBlocks += 1
                if zeroBlocks == 2 { break }
                position += 512
                continue
            }
            zeroBlocks = 0
            guard Self.checksumMatches(h) else {
                throw WispError.corrupt(archive.name, "tar header", at: position, "checksum does not match")
            }
            let size = try Self.octal(h[124..<136], archive: archive.name, at: position)
            let dataStart = position + 512
            guard size <= archive.size - dataStart else {
                throw WispError.corrupt(archive.name, "tar member", at: position, "\(size) bytes reach past the end of the archive")
            }
            let type = h[156]
            var name = Self.string(h[0..<100])
            if h[257..<262].elementsEqual("ustar".utf8) {
                let prefix = Self.string(h[345..<500])
                if !prefix.isEmpty { name = prefix + "/" + name }
            }
            switch type {
            case UInt8(ascii: "L"), UInt8(ascii: "x"):
                guard size <= 64 << 10 else {
                    throw WispError.corrupt(archive.name, "tar extended header", at: position, "\(size) bytes")
                }
                let body = try archive.read(at: dataStart, count: Int(size))
                pendingName = type == UInt8(ascii: "L") ? Self.string(body[...]) : Self.paxPath(body)
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"):
                guard members.count < Self.maxMembers else {
                    throw WispError.corrupt(archive.name, "tar archive", "more than \(Self.maxMembers) members")
                }
                members.append(Member(name: pendingName ?? name, offset: dataStart, size: size))
                pendingName = nil
            default:
                pendingName = nil
            }
            position = dataStart + (size + 511) / 512 * 512
        }
        self.members = members
    }

    /// The member named `name` (leading "./" ignored).
    public func member(_ name: String) -> Member? {
        let want = Self.normalized(name)
        return members.first { Self.normalized($0.name) == want }
    }

    /// `name` without leading "./".
    public static func normalizedName(_ name: String) -> String { normalized(name) }

    static func normalized(_ name: String) -> String {
        var n = Substring(name)
        while n.hasPrefix("./") { n = n.dropFirst(2) }
        return String(n)
    }

    static func string(_ bytes: ArraySlice<UInt8>) -> String {
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        return String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self)
    }

    static func octal(_ field: ArraySlice<UInt8>, archive: String, at: UInt64) throws -> UInt64 {
        if let first = field.first, first & 0x80 != 0 {
            // GNU base-256: big-endian binary after the marker bit.
            var v: UInt64 = 0
            for (i, b) in field.enumerated() {
                let byte = i == 0 ? b & 0x7F : b
                guard v >> 56 == 0 else { throw WispError.corrupt(archive, "tar size", at: at, "too large") }
                v = v << 8 | UInt64(byte)
            }
            return v
        }
        var v: UInt64 = 0
        for b in field {
            if b == 0 || b == 0x20 { if v > 0 { break } else { continue } }
            guard b >= 0x30, b <= 0x37, v >> 60 == 0 else {
                throw WispError.corrupt(archive, "tar header", at: at, "size field is not octal")
            }
            v = v << 3 | UInt64(b - 0x30)
        }
        return v
    }

    static func checksumMatches(_ h: [UInt8]) -> Bool {
        guard let recorded = try? octal(h[148..<156], archive: "", at: 0) else { return false }
        var sum: UInt64 = 0
        for (i, b) in h.enumerated() { sum += (148..<156).contains(i) ? 0x20 : UInt64(b) }
        return sum == recorded
    }

    /// "NN path=VALUE\n" records of a pax header.
    static func paxPath(_ body: [UInt8]) -> String? {
        let text = String(decoding: body, as: UTF8.self)
        for record in text.split(separator: "\n") {
            guard let space = record.firstIndex(of: " ") else { continue }
            let kv = record[record.index(after: space)...]
            if kv.hasPrefix("path=") { return String(kv.dropFirst(5)) }
        }
        return nil
    }
}
