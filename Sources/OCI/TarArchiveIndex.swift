import WispCore

/// Where each regular file of an uncompressed tar lies in it, so blobs of an
/// `oci-archive:` or `docker-archive:` can be read in place, in any order, without
/// unpacking the archive. Reads ustar, PAX (`path`, `size`) and GNU long names; every
/// header is checksummed and every size bounds-checked against the file.
struct TarArchiveIndex: Sendable {
    struct Member: Sendable, Equatable {
        var offset: UInt64
        var size: UInt64
    }

    let source: String
    private(set) var members: [String: Member] = [:]
    /// Symbolic links between members (skopeo's docker archives name `<id>/layer.tar` as a
    /// link to `<digest>.tar`), resolved on lookup.
    private(set) var links: [String: String] = [:]

    static let maxMembers = 200_000
    static let maxExtendedHeader = 1 << 20

    init(file: PosixFile, source: String) throws {
        self.source = source
        let fileSize = try file.size()
        var offset: UInt64 = 0
        var longName: String? = nil
        var paxPath: String? = nil
        var paxSize: UInt64? = nil
        var paxLink: String? = nil
        var longLink: String? = nil
        var block = [UInt8](repeating: 0, count: 512)
        var zeroBlocks = 0
        var count = 0
        while offset + 512 <= fileSize {
            try block.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
            if block.allSatisfy({ $0 == 0 }) {
                zeroBlocks += 1
                offset += 512
                if zeroBlocks == 2 { break }
                continue
            }
            zeroBlocks = 0
            try Self.checkChecksum(block, source: source, at: offset)
            let type = block[156]
            var size = try Self.number(block[124..<136], source: source, field: "size", at: offset)
            if let paxSize, type != UInt8(ascii: "x"), type != UInt8(ascii: "g") { size = paxSize }
            let dataOffset = offset + 512
            let padded = size.addingReportingOverflow(511)
            guard !padded.overflow, dataOffset <= fileSize, size <= fileSize - dataOffset else {
                throw WispError.corrupt(source, "tar header", at: offset, "member size \(size) runs past the end of the \(fileSize)-byte archive")
            }
            let next = dataOffset + padded.partialValue / 512 * 512
            switch type {
            case UInt8(ascii: "x"), UInt8(ascii: "L"), UInt8(ascii: "K"):
                guard size <= UInt64(Self.maxExtendedHeader) else {
                    throw WispError.corrupt(source, "tar extended header", at: offset, "\(size) bytes is more than the \(Self.maxExtendedHeader)-byte limit")
                }
                var data = [UInt8](repeating: 0, count: Int(size))
                try data.withUnsafeMutableBytes { try file.read(into: $0, at: dataOffset) }
                if type == UInt8(ascii: "L") {
                    longName = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
                } else if type == UInt8(ascii: "K") {
                    longLink = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
                } else {
                    let records = try Self.paxRecords(data, source: source, at: offset)
                    if let path = records["path"] { paxPath = path }
                    if let link = records["linkpath"] { paxLink = link }
                    if let text = records["size"] {
                        guard let value = UInt64(text) else {
                            throw WispError.corrupt(source, "tar PAX header", at: offset, "size \(OCIDigest.clip(text)) is not a number")
                        }
                        paxSize = value
                    }
                }
            case UInt8(ascii: "g"):
                break
            default:
                let name = paxPath ?? longName ?? Self.ustarName(block)
                if type == UInt8(ascii: "0") || type == 0 || type == UInt8(ascii: "7") {
                    count += 1
                    guard count <= Self.maxMembers else {
                        throw WispError.corrupt(source, "tar archive", at: offset, "more than \(Self.maxMembers) files")
                    }
                    members[Self.normalise(name)] = Member(offset: dataOffset, size: size)
                } else if type == UInt8(ascii: "2") {
                    count += 1
                    guard count <= Self.maxMembers else {
                        throw WispError.corrupt(source, "tar archive", at: offset, "more than \(Self.maxMembers) files")
                    }
                    let target = paxLink ?? longLink ?? String(decoding: block[157..<257].prefix { $0 != 0 }, as: UTF8.self)
                    let normalised = Self.normalise(name)
                    let directory = normalised.split(separator: "/").dropLast().joined(separator: "/")
                    links[normalised] = Self.normalise(target.hasPrefix("/") ? target : "\(directory)/\(target)")
                }
                paxLink = nil
                longLink = nil
                paxPath = nil
                paxSize = nil
                longName = nil
            }
            offset = next
        }
        if members.isEmpty {
            throw WispError.corrupt(source, "tar archive", "no files in it (is it a tar archive?)")
        }
    }

    func member(_ name: String) -> Member? {
        var current = Self.normalise(name)
        for _ in 0..<8 {
            if let member = members[current] { return member }
            guard let next = links[current] else { return nil }
            current = next
        }
        return nil
    }

    /// `./a//b` and `a/b` are the same member.
    static func normalise(_ name: String) -> String {
        var parts = name.split(separator: "/").filter { $0 != "." }
        while parts.first == ".." { parts.removeFirst() }
        return parts.joined(separator: "/")
    }

    static func ustarName(_ block: [UInt8]) -> String {
        let name = String(decoding: block[0..<100].prefix { $0 != 0 }, as: UTF8.self)
        let magic = Array(block[257..<262])
        guard magic == Array("ustar".utf8) else { return name }
        let prefix = String(decoding: block[345..<500].prefix { $0 != 0 }, as: UTF8.self)
        return prefix.isEmpty ? name : "\(prefix)/\(name)"
    }

    static func checkChecksum(_ block: [UInt8], source: String, at offset: UInt64) throws {
        let stored = try number(block[148..<156], source: source, field: "checksum", at: offset)
        var sum: UInt64 = 0
        for (i, byte) in block.enumerated() { sum += (148..<156).contains(i) ? 32 : UInt64(byte) }
        guard sum == stored else {
            throw WispError.corrupt(source, "tar header", at: offset, "checksum \(stored) does not match the header's bytes (\(sum)); not a tar archive, or a damaged one")
        }
    }

    /// Octal digits (space or NUL terminated) or GNU base-256 (high bit set).
    static func number(_ field: ArraySlice<UInt8>, source: String, field name: String, at offset: UInt64) throws -> UInt64 {
        if let first = field.first, first & 0x80 != 0 {
            var value: UInt64 = 0
            for (i, byte) in field.enumerated() {
                let b = i == 0 ? byte & 0x7f : byte
                guard value >> 56 == 0 else {
                    throw WispError.corrupt(source, "tar header", at: offset, "\(name) does not fit 64 bits")
                }
                value = value << 8 | UInt64(b)
            }
            return value
        }
        var value: UInt64 = 0
        var seenDigit = false
        for byte in field {
            if byte == 0 || byte == 32 { if seenDigit { break } else { continue } }
            guard (48...55).contains(byte), value >> 60 == 0 else {
                throw WispError.corrupt(source, "tar header", at: offset, "\(name) field is not an octal number (not a tar archive, or a damaged one)")
            }
            value = value * 8 + UInt64(byte - 48)
            seenDigit = true
        }
        return value
    }

    /// `LEN key=value\n` records.
    static func paxRecords(_ data: [UInt8], source: String, at offset: UInt64) throws -> [String: String] {
        var records: [String: String] = [:]
        var i = 0
        while i < data.count {
            guard let space = data[i...].firstIndex(of: 32) else { break }
            guard let length = Int(String(decoding: data[i..<space], as: UTF8.self)), length > space - i + 1,
                  length <= data.count - i, data[i + length - 1] == 10 else {
                throw WispError.corrupt(source, "tar PAX header", at: offset, "malformed record at byte \(i)")
            }
            let record = data[(space + 1)..<(i + length - 1)]
            if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                records[String(decoding: record[..<equals], as: UTF8.self)] = String(decoding: record[(equals + 1)...], as: UTF8.self)
            }
            i += length
        }
        return records
    }
}
