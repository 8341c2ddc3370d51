import WispCore

/// SUSP / RRIP 1.09 ("RRIP_1991A", what genisoimage -rock writes) System Use entries.
enum RockRidge {
    static let identifier = Array("RRIP_1991A".utf8)
    static let descriptor = Array("THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS".utf8)
    static let sourceText = Array("PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.".utf8)

    /// SP: marks SUSP in use; first entry of the root's "." record, no bytes skipped.
    static let sharingProtocol: [UInt8] = [0x53, 0x50, 7, 1, 0xBE, 0xEF, 0]

    /// ER: names the extension (RRIP) so readers such as Linux prefer these names to Joliet.
    static let extensionReference: [UInt8] = {
        var entry: [UInt8] = [0x45, 0x52, 0, 1, UInt8(identifier.count), UInt8(descriptor.count), UInt8(sourceText.count), 1]
        entry += identifier + descriptor + sourceText
        entry[2] = UInt8(entry.count)
        return entry
    }()

    // RR flags: which RRIP entries this record carries (RRIP 1.09 readers check them).
    static let flagPX: UInt8 = 0x01, flagSL: UInt8 = 0x04, flagNM: UInt8 = 0x08, flagTF: UInt8 = 0x80

    /// RR, PX, TF, then NM (when `name` is given) and SL for symlinks.
    static func attributes(for node: ISONode, timestamp: Int64, name: String?) -> [[UInt8]] {
        var entries: [[UInt8]] = []
        var flags = flagPX | flagTF
        let names = name.map(nameEntries) ?? []
        if !names.isEmpty { flags |= flagNM }
        var links: [[UInt8]] = []
        if name != nil, case .symlink(let target) = node.kind {
            links = (try? symlinkEntries(target, source: "", path: "")) ?? []
            flags |= flagSL
        }
        entries.append([0x52, 0x52, 5, 1, flags])
        entries.append(posixAttributes(node))
        entries.append(timestamps(timestamp))
        return entries + names + links
    }

    static func posixAttributes(_ node: ISONode) -> [UInt8] {
        var entry = [UInt8](repeating: 0, count: 36)
        entry[0] = 0x50; entry[1] = 0x58; entry[2] = 36; entry[3] = 1
        let typeBits: UInt32
        let links: UInt32
        switch node.kind {
        case .file: typeBits = 0o100000; links = 1
        case .symlink: typeBits = 0o120000; links = 1
        case .directory:
            typeBits = 0o040000
            links = 2 + UInt32(node.children.filter(\.isDirectory).count)
        }
        ISOBytes.putBoth32(&entry, 4, typeBits | node.permissions)
        ISOBytes.putBoth32(&entry, 12, links)
        ISOBytes.putBoth32(&entry, 20, 0)
        ISOBytes.putBoth32(&entry, 28, 0)
        return entry
    }

    /// TF with modification, access and attribute-change times, all `timestamp`.
    static func timestamps(_ timestamp: Int64) -> [UInt8] {
        let stamp = ISOBytes.recordDate(timestamp)
        return [0x54, 0x46, 26, 1, 0x02 | 0x04 | 0x08] + stamp + stamp + stamp
    }

    /// NM entries; a name longer than one entry holds continues in the next (flag 1).
    static func nameEntries(_ name: String) -> [[UInt8]] {
        let bytes = Array(name.utf8)
        var entries: [[UInt8]] = []
        var start = 0
        repeat {
            let end = min(bytes.count, start + 200)
            let more = end < bytes.count
            entries.append([0x4E, 0x4D, UInt8(5 + end - start), 1, more ? 1 : 0] + bytes[start..<end])
            start = end
        } while start < bytes.count
        return entries
    }

    /// One SL entry holding the target's components; targets too long for a single entry
    /// are refused (no symlink a seed needs comes close).
    static func symlinkEntries(_ target: String, source: String, path: String) throws -> [[UInt8]] {
        guard !target.isEmpty, !target.utf8.contains(0) else {
            throw WispError.invalidArgument("\(source): symlink \(path) has an empty target or one containing NUL")
        }
        var components: [UInt8] = []
        if target.hasPrefix("/") { components += [0x08, 0] }
        for part in target.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": components += [0x02, 0]
            case "..": components += [0x04, 0]
            default:
                let bytes = Array(part.utf8)
                guard bytes.count <= 248 else {
                    throw WispError.invalidArgument("\(source): symlink \(path) has a target component longer than 248 bytes")
                }
                components += [0, UInt8(bytes.count)] + bytes
            }
        }
        guard components.count <= 250 else {
            throw WispError.invalidArgument("\(source): symlink \(path) target is too long for one Rock Ridge SL entry (\(target.utf8.count) bytes; keep it under about 240)")
        }
        return [[0x53, 0x4C, UInt8(5 + components.count), 1, 0] + components]
    }
}

/// Identifiers for the two hierarchies.
enum ISONames {
    /// ISO 9660 level 1: d-characters (A-Z 0-9 _), 8.3 files with ";1", 8-character
    /// directories. Rock Ridge NM carries the real name; this one only has to be legal and
    /// unique, so clashes get a numeric tail (USER_DAT, USER_DA1, ...).
    static func primary(_ name: String, isDirectory: Bool, taken: inout Set<[UInt8]>) -> [UInt8] {
        func dchars<S: Sequence>(_ text: S) -> [UInt8] where S.Element == UInt8 {
            text.map { byte -> UInt8 in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"): return byte - 32
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"): return byte
                default: return UInt8(ascii: "_")
                }
            }
        }
        let utf8 = Array(name.utf8)
        var base: [UInt8], ext: [UInt8]
        if isDirectory {
            base = Array(dchars(utf8).prefix(8)); ext = []
        } else if let dot = utf8.lastIndex(of: UInt8(ascii: ".")), dot > 0 {
            base = Array(dchars(utf8[..<dot]).prefix(8)); ext = Array(dchars(utf8[(dot + 1)...]).prefix(3))
        } else {
            base = Array(dchars(utf8.drop { $0 == UInt8(ascii: ".") }).prefix(8)); ext = []
        }
        if base.isEmpty { base = [UInt8(ascii: "_")] }
        func identifier(_ base: [UInt8]) -> [UInt8] {
            isDirectory ? base : base + [UInt8(ascii: ".")] + ext + Array(";1".utf8)
        }
        var candidate = identifier(base)
        var counter = 1
        while taken.contains(candidate) {
            let tail = Array(String(counter).utf8)
            candidate = identifier(Array(base.prefix(8 - tail.count)) + tail)
            counter += 1
        }
        taken.insert(candidate)
        return candidate
    }

    /// Joliet: UCS-2 big-endian (UTF-16 for characters beyond the BMP), at most 64 units,
    /// no ";1" version (as genisoimage writes them); the characters Joliet forbids become "_".
    static func joliet(_ name: String, isDirectory: Bool, taken: inout Set<[UInt8]>) -> [UInt8] {
        let forbidden: Set<UInt16> = [0x2A, 0x2F, 0x3A, 0x3B, 0x3F, 0x5C]
        let units = name.utf16.map { $0 < 0x20 || forbidden.contains($0) ? 0x5F : $0 }
        let limit = 64
        func encode(_ units: [UInt16]) -> [UInt8] {
            // Never cut a surrogate pair in half.
            var units = units
            if let last = units.last, (0xD800...0xDBFF).contains(last) { units.removeLast() }
            return units.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        }
        var candidate = encode(Array(units.prefix(limit)))
        var counter = 1
        while taken.contains(candidate) {
            let tail = Array("~\(counter)".utf16)
            candidate = encode(Array(units.prefix(limit - tail.count)) + tail)
            counter += 1
        }
        taken.insert(candidate)
        return candidate
    }
}

/// Byte-level encoders ISO 9660 uses everywhere: both-endian integers and dates.
enum ISOBytes {
    static func putBoth32(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt32) {
        bytes.putLE32(value, at: offset)
        bytes.putBE32(value, at: offset + 4)
    }

    static func putBoth16(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt16) {
        bytes.putLE16(value, at: offset)
        bytes.putBE16(value, at: offset + 2)
    }

    /// The 7-byte directory-record date (years since 1900, GMT offset 0).
    static func recordDate(_ timestamp: Int64) -> [UInt8] {
        let t = CivilTime(secondsSinceEpoch: timestamp)
        let year = UInt8(clamping: max(0, t.year - 1900))
        return [year, UInt8(t.month), UInt8(t.day), UInt8(t.hour), UInt8(t.minute), UInt8(t.second), 0]
    }

    /// The 17-byte volume-descriptor date: "YYYYMMDDHHMMSScc" and a GMT offset.
    static func volumeDate(_ timestamp: Int64?) -> [UInt8] {
        guard let timestamp else { return Array(repeating: UInt8(ascii: "0"), count: 16) + [0] }
        let t = CivilTime(secondsSinceEpoch: timestamp)
        func digits(_ value: Int, _ width: Int) -> [UInt8] {
            let text = String(min(max(value, 0), width == 4 ? 9999 : 99))
            return Array((String(repeating: "0", count: max(0, width - text.count)) + text).utf8)
        }
        return digits(t.year, 4) + digits(t.month, 2) + digits(t.day, 2) + digits(t.hour, 2)
            + digits(t.minute, 2) + digits(t.second, 2) + digits(0, 2) + [0]
    }
}
