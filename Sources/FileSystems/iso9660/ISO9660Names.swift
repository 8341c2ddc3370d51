import WispCore

/// How a record's identifier becomes a file name in each hierarchy: Rock Ridge's NM as
/// UTF-8, Joliet's UCS-2 (big-endian, surrogate pairs allowed as Linux and xorriso do),
/// or the plain ISO 9660 name without its ";1" version and the "." of an empty extension.
enum ISO9660Names {
    static func ucs2(_ bytes: [UInt8]) -> String {
        var units: [UInt16] = []
        units.reserveCapacity(bytes.count / 2)
        var i = 0
        while i + 1 < bytes.count {
            units.append(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]))
            i += 2
        }
        return String(decoding: units, as: UTF16.self)
    }

    /// "README.TXT;1" → "README.TXT", "NAME.;1" → "NAME"; Joliet names carry ";1" too.
    static func withoutVersion(_ name: String) -> String {
        var base = name
        if let semicolon = base.lastIndex(of: ";"),
           base[base.index(after: semicolon)...].allSatisfy(\.isASCII),
           base[base.index(after: semicolon)...].allSatisfy(\.isNumber) {
            base = String(base[..<semicolon])
        }
        if base.hasSuffix("."), base.count > 1 { base.removeLast() }
        return base
    }

    static func trimmed(_ text: String) -> String {
        var s = Substring(text)
        while let c = s.first, c == " " || c == "\u{0}" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\u{0}" { s = s.dropLast() }
        return String(s)
    }

    /// Refuses names that would escape a directory when extracted or break path lookup.
    static func check(_ name: String, record: ISO9660Record, source: String) throws {
        // Byte tests, not String.contains(String): with Foundation imported that is
        // NSString's search, which made listing an 8,000-file ISO take 0.6 s.
        guard !name.isEmpty, name != ".", name != "..", !name.utf8.contains(0x2F), !name.utf8.contains(0) else {
            throw WispError.corrupt(source, "ISO 9660 directory record", at: record.offset,
                                    "file name \"\(name)\" is empty, \".\", \"..\" or holds \"/\" or NUL")
        }
    }
}
