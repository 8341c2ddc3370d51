import WispCore

/// The section table of a PE/COFF file, enough to take a unified kernel image apart
/// (.linux, .initrd, .cmdline, .osrel, .uname sections, as systemd-stub lays them out).
public struct PEImage: Sendable {
    public struct Section: Sendable, Equatable {
        public var name: String
        public var fileOffset: Int
        /// Bytes of real content: the smaller of VirtualSize and SizeOfRawData, since the raw
        /// size is padded to the file alignment and the stub itself reads VirtualSize bytes.
        public var size: Int
    }

    public var machine: UInt16
    public var sections: [Section]

    public init(_ bytes: [UInt8], source: String) throws {
        try self.init(headers: bytes, fileSize: UInt64(bytes.count), source: source)
    }

    /// Parses the headers in `headers` (the file's first bytes), checking section extents
    /// against the whole file's size.
    public init(headers bytes: [UInt8], fileSize: UInt64, source: String) throws {
        let r = ByteReader(bytes, source: source, structure: "PE header")
        guard try r.u16le(0) == 0x5a4d else { throw r.error(at: 0, "no \"MZ\" DOS header") }
        let peOffset = Int(try r.u32le(0x3c))
        guard try r.u32le(peOffset) == 0x0000_4550 else {
            throw r.error(at: peOffset, "no \"PE\\0\\0\" signature at the offset the DOS header gives")
        }
        machine = try r.u16le(peOffset + 4)
        let count = Int(try r.u16le(peOffset + 6))
        guard count <= 96 else { throw r.error(at: peOffset + 6, "\(count) sections; at most 96 are allowed") }
        let optionalSize = Int(try r.u16le(peOffset + 20))
        let table = peOffset + 24 + optionalSize
        var sections: [Section] = []
        for index in 0..<count {
            let at = table + index * 40
            let rawName = try r.array(at, 8)
            let name = String(decoding: rawName.prefix { $0 != 0 }, as: UTF8.self)
            let virtualSize = Int(try r.u32le(at + 8))
            let rawSize = Int(try r.u32le(at + 16))
            let rawOffset = Int(try r.u32le(at + 20))
            let size = virtualSize == 0 ? rawSize : min(virtualSize, rawSize)
            guard UInt64(rawOffset) <= fileSize, UInt64(size) <= fileSize - UInt64(rawOffset) else {
                throw r.error(at: at, "section \(name) (\(rawOffset)+\(size)) lies outside the \(fileSize)-byte file")
            }
            sections.append(Section(name: name, fileOffset: rawOffset, size: size))
        }
        self.sections = sections
    }

    public var architecture: String {
        switch machine {
        case 0x8664: return "x86_64"
        case 0xaa64: return "arm64"
        case 0x014c: return "x86"
        case 0x5064: return "riscv64"
        case 0x6264: return "loongarch64"
        default: return "unknown"
        }
    }

    public func section(named name: String) -> Section? { sections.first { $0.name == name } }

    public func sectionBytes(_ name: String, bytes: [UInt8]) -> [UInt8]? {
        guard let s = section(named: name), s.fileOffset <= bytes.count, s.size <= bytes.count - s.fileOffset else { return nil }
        return Array(bytes[s.fileOffset..<(s.fileOffset + s.size)])
    }

    /// A text section, trailing NULs and whitespace removed.
    public func sectionText(_ name: String, bytes: [UInt8]) -> String? {
        guard let raw = sectionBytes(name, bytes: bytes) else { return nil }
        let text = String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        return text.trimmingWhitespace()
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
