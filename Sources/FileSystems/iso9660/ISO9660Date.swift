/// ISO 9660 dates: the 7-byte form of directory records and Rock Ridge TF entries, and the
/// 17-byte digit form of volume descriptors (and TF with its long-form flag). Both carry
/// the offset from UTC in 15-minute steps; a date whose fields are out of range reads as
/// the epoch rather than failing the whole listing, as Linux's isofs does.
enum ISO9660Date {
    /// Years since 1900, month, day, hour, minute, second, offset (signed, 15-minute units).
    static func short(_ b: ArraySlice<UInt8>) -> Timestamp {
        guard b.count >= 7 else { return Timestamp(seconds: 0) }
        let s = b.startIndex
        let month = Int64(b[s + 1]), day = Int64(b[s + 2])
        guard (1...12).contains(month), (1...31).contains(day), b[s + 3] < 24, b[s + 4] < 60, b[s + 5] < 61 else {
            return Timestamp(seconds: 0)
        }
        let offset = Int64(Int8(bitPattern: b[s + 6]))
        let local = FATTime.daysFromCivil(1900 + Int64(b[s]), month, day) * 86_400
            + Int64(b[s + 3]) * 3600 + Int64(b[s + 4]) * 60 + Int64(b[s + 5])
        return Timestamp(seconds: local - (-48...52 ~= offset ? offset * 900 : 0))
    }

    /// "YYYYMMDDHHMMSScc" as ASCII digits, then the offset byte. All zeros or blanks: nil.
    static func long(_ b: ArraySlice<UInt8>) -> Timestamp? {
        guard let fields = digits(b) else { return nil }
        let (year, month, day, hour, minute, second, centis) = fields
        guard year > 0, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        let offset = Int64(Int8(bitPattern: b[b.startIndex + 16]))
        let local = FATTime.daysFromCivil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        return Timestamp(seconds: local - (-48...52 ~= offset ? offset * 900 : 0), nanoseconds: UInt32(centis) * 10_000_000)
    }

    /// The 16 digits of a long-form date as blkid shows an ISO's UUID: "2024-01-31-12-00-00-00"
    /// (local digits, no offset applied), or nil when the date is unset.
    static func blkidUUID(_ b: ArraySlice<UInt8>) -> String? {
        guard b.count >= 16 else { return nil }
        let text = b.prefix(16)
        guard text.allSatisfy({ (0x30...0x39).contains($0) }), text.contains(where: { $0 != 0x30 }) else { return nil }
        let t = Array(text)
        func part(_ r: Range<Int>) -> String { String(decoding: t[r], as: UTF8.self) }
        return [part(0..<4), part(4..<6), part(6..<8), part(8..<10), part(10..<12), part(12..<14), part(14..<16)]
            .joined(separator: "-")
    }

    private static func digits(_ b: ArraySlice<UInt8>) -> (Int64, Int64, Int64, Int64, Int64, Int64, Int64)? {
        guard b.count >= 17 else { return nil }
        let t = Array(b.prefix(16))
        guard t.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        func n(_ r: Range<Int>) -> Int64 { t[r].reduce(0) { $0 * 10 + Int64($1 - 0x30) } }
        return (n(0..<4), n(4..<6), n(6..<8), n(8..<10), n(10..<12), n(12..<14), n(14..<16))
    }
}
