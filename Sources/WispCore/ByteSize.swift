/// Sizes as users type them, in qemu-img's spelling: `10G`, `512M`, `1.5T`, `4096`, `64k`.
/// Suffixes are binary (K = 1024), case-insensitive, with optional trailing `B`/`iB`.
public enum ByteSize {
    /// `bareUnit` is what a number without a suffix counts: bytes for disk sizes (as
    /// qemu-img), MiB for memory (as `qemu -m`, so `--memory 2048` is 2 GiB).
    public static func parse(_ text: String) throws -> UInt64 { try parse(text, bareUnit: 1) }

    public static func parse(_ text: String, bareUnit: UInt64) throws -> UInt64 {
        var s = text.trimmingWhitespace()
        guard !s.isEmpty else { throw WispError.usage("empty size") }
        let upper = s.uppercased()
        if upper.hasSuffix("IB") { s.removeLast(2) } else if upper.hasSuffix("B") && s.count > 1 { s.removeLast() }
        var multiplier: UInt64 = upper.hasSuffix("B") ? 1 : bareUnit
        if let last = s.last, last.isLetter {
            switch last.uppercased() {
            case "K": multiplier = 1 << 10
            case "M": multiplier = 1 << 20
            case "G": multiplier = 1 << 30
            case "T": multiplier = 1 << 40
            case "P": multiplier = 1 << 50
            case "E": multiplier = 1 << 60
            default: throw WispError.usage("'\(text)': unknown size suffix '\(last)' (use K, M, G, T, P or E)")
            }
            s.removeLast()
        }
        if let whole = UInt64(s) {
            let (value, overflow) = whole.multipliedReportingOverflow(by: multiplier)
            guard !overflow else { throw WispError.usage("'\(text)': size is too large") }
            return value
        }
        guard let fractional = Double(s), fractional >= 0, fractional.isFinite else {
            throw WispError.usage("'\(text)': not a size (examples: 10G, 512M, 4096)")
        }
        let value = fractional * Double(multiplier)
        guard value < 1.8e19 else { throw WispError.usage("'\(text)': size is too large") }
        return UInt64(value.rounded())
    }

    /// Memory as `-m` reads it: a bare number is MiB.
    public static func parseMemory(_ text: String) throws -> UInt64 {
        try parse(text, bareUnit: 1 << 20)
    }

    /// `10 GiB`, `512 MiB`, `1.5 KiB`, `123 B`: for human output.
    public static func format(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(bytes) B" }
        if value == value.rounded() { return "\(Int(value)) \(units[unit])" }
        return "\((value * 10).rounded() / 10) \(units[unit])"
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
