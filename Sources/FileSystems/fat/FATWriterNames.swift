import WispCore

/// 8.3 aliases and VFAT long-name entries.
enum FATNames {
    static let space = UInt8(ascii: " ")

    /// Characters allowed in a short name besides A-Z and 0-9.
    static let shortSpecials = Set("!#$%&'()-@^_`{}~".utf8)

    /// Characters a long name may not hold (plus control characters).
    static let longForbidden: Set<UInt16> = Set("\"*/:<>?\\|".utf16)

    static func isShortCharacter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || shortSpecials.contains(byte)
    }

    /// Refuses names FAT cannot hold or that Linux would read back differently.
    static func checkLongName(_ name: String, source: String, path: String) throws {
        let units = Array(name.utf16)
        guard units.count <= 255 else {
            throw WispError.invalidArgument("\(source): \(path) has \(units.count) UTF-16 units; FAT long names hold at most 255")
        }
        if let bad = units.first(where: { $0 < 0x20 || longForbidden.contains($0) }) {
            let shown = bad < 0x20 ? "control character \(bad)" : "'\(String(decoding: [bad], as: UTF16.self))'"
            throw WispError.invalidArgument("\(source): \(path) contains \(shown), which FAT names cannot hold")
        }
        guard let last = name.last, last != ".", last != " " else {
            throw WispError.invalidArgument("\(source): \(path) ends with '.' or a space, which FAT drops from names")
        }
    }

    /// The exact 11-byte short name when `name` is already a valid upper-case 8.3 name.
    static func exactShortName(_ name: String) -> [UInt8]? {
        let bytes = Array(name.utf8)
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count <= 2, let base = parts.first, (1...8).contains(base.count) else { return nil }
        let ext = parts.count == 2 ? parts[1] : []
        guard ext.count <= 3, !(parts.count == 2 && ext.isEmpty) else { return nil }
        guard base.allSatisfy(isShortCharacter), ext.allSatisfy(isShortCharacter) else { return nil }
        return Array(base) + [UInt8](repeating: space, count: 8 - base.count) + Array(ext) + [UInt8](repeating: space, count: 3 - ext.count)
    }

    /// The Windows-style alias: upper case, invalid characters as "_", basis cut to fit a
    /// "~N" tail, the lowest N not taken in this directory.
    static func alias(_ name: String, taken: Set<[UInt8]>) -> [UInt8] {
        func map<S: Sequence>(_ text: S) -> [UInt8] where S.Element == UInt8 {
            text.compactMap { byte -> UInt8? in
                if byte == space { return nil }
                let upper = (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) ? byte - 32 : byte
                return isShortCharacter(upper) ? upper : UInt8(ascii: "_")
            }
        }
        // Multi-byte UTF-8 sequences collapse to one "_" per character.
        let ascii = name.unicodeScalars.map { $0.isASCII ? UInt8($0.value) : UInt8(ascii: "_") }
        let trimmed = Array(ascii.drop { $0 == UInt8(ascii: ".") || $0 == space })
        var basis: [UInt8], ext: [UInt8]
        if let dot = trimmed.lastIndex(of: UInt8(ascii: ".")) {
            basis = map(trimmed[..<dot].filter { $0 != UInt8(ascii: ".") })
            ext = Array(map(trimmed[(dot + 1)...]).prefix(3))
        } else {
            basis = map(trimmed); ext = []
        }
        if basis.isEmpty { basis = [UInt8(ascii: "_")] }
        let extField = ext + [UInt8](repeating: space, count: 3 - ext.count)
        var counter = 1
        while true {
            let tail = Array("~\(counter)".utf8)
            let head = Array(basis.prefix(8 - tail.count))
            let candidate = head + tail + [UInt8](repeating: space, count: 8 - head.count - tail.count) + extField
            if !taken.contains(candidate) { return candidate }
            counter += 1
        }
    }

    static func checksum(_ shortName: [UInt8]) -> UInt8 {
        var sum: UInt8 = 0
        for byte in shortName { sum = ((sum & 1) << 7) &+ (sum >> 1) &+ byte }
        return sum
    }

    /// LFN entries in on-disk order (last part first), each 32 bytes.
    static func longNameEntries(_ name: String, shortName: [UInt8]) -> [[UInt8]] {
        var units = Array(name.utf16)
        let count = (units.count + 12) / 13
        if units.count % 13 != 0 {
            units.append(0)
            while units.count % 13 != 0 { units.append(0xFFFF) }
        }
        let sum = checksum(shortName)
        var entries: [[UInt8]] = []
        for index in stride(from: count, through: 1, by: -1) {
            var entry = [UInt8](repeating: 0, count: 32)
            entry[0] = UInt8(index) | (index == count ? 0x40 : 0)
            entry[11] = 0x0F
            entry[13] = sum
            let part = units[(index - 1) * 13..<(index * 13)]
            let offsets = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]
            for (unit, offset) in zip(part, offsets) { entry.putLE16(unit, at: offset) }
            entries.append(entry)
        }
        return entries
    }
}
