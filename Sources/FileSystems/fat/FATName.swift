/// Names in FAT directories: 8.3 short names in the OEM code page (437, the Linux
/// default) with the Windows NT lowercase flags, and VFAT long names in UCS-2.
enum FATName {
    /// The checksum of an 11-byte short name that each of its long-name entries carries.
    static func shortNameChecksum<C: Collection>(_ name: C) -> UInt8 where C.Element == UInt8 {
        var sum: UInt8 = 0
        for byte in name { sum = (sum >> 1 | sum << 7) &+ byte }
        return sum
    }

    /// "README  TXT" + flags → "readme.txt"; byte 0x05 stands for 0xE5 in the first position.
    static func displayShortName(_ raw: [UInt8], caseFlags: UInt8) -> String {
        var base = Array(raw.prefix(8))
        let ext = Array(raw.dropFirst(8).prefix(3))
        if base.first == 0x05 { base[0] = 0xE5 }
        var name = decodeOEM(base).trimmingTrailingSpaces()
        var suffix = decodeOEM(ext).trimmingTrailingSpaces()
        if caseFlags & 0x08 != 0 { name = name.lowercased() }
        if caseFlags & 0x10 != 0 { suffix = suffix.lowercased() }
        return suffix.isEmpty ? name : name + "." + suffix
    }

    static func decodeOEM<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var text = ""
        for byte in bytes {
            if byte < 0x80 {
                text.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                text.append(cp437High[Int(byte - 0x80)])
            }
        }
        return text
    }

    /// The 13 UCS-2 code units one long-name entry holds, at bytes 1-10, 14-25 and 28-31.
    static func longNameUnits(_ entry: ArraySlice<UInt8>) -> [UInt16] {
        let base = entry.startIndex
        var units: [UInt16] = []
        units.reserveCapacity(13)
        for range in [1..<11, 14..<26, 28..<32] {
            var i = range.lowerBound
            while i < range.upperBound {
                units.append(UInt16(entry[base + i]) | UInt16(entry[base + i + 1]) << 8)
                i += 2
            }
        }
        return units
    }

    /// Long-name code units up to the NUL terminator (0xFFFF pads after it), as a String;
    /// unpaired surrogates become U+FFFD.
    static func decodeLongName(_ units: [UInt16]) -> String {
        let end = units.firstIndex(of: 0) ?? units.endIndex
        return String(decoding: units[..<end], as: UTF16.self)
    }

    static let cp437High: [Character] = Array("ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■ ")
}
