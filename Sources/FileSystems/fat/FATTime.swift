/// FAT dates and times: local time with 2-second resolution, years 1980-2107. Wisp reads
/// them as UTC, as the Linux driver does by default (tz=UTC unless told otherwise).
enum FATTime {
    static func timestamp(date: UInt16, time: UInt16) -> Timestamp {
        guard date != 0 else { return Timestamp(seconds: 0) }
        let year = Int64(date >> 9) + 1980
        let month = Int64(min(max((date >> 5) & 0xF, 1), 12))
        let day = Int64(max(date & 0x1F, 1))
        let hours = Int64(time >> 11)
        let minutes = Int64((time >> 5) & 0x3F)
        let seconds = Int64(time & 0x1F) * 2
        return Timestamp(seconds: daysFromCivil(year, month, day) * 86_400 + hours * 3600 + minutes * 60 + seconds)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
