/// PyYAML's implicit typing of plain scalars (YAML 1.1, what cloud-init's safe_load uses),
/// written as small matchers instead of regular expressions: building the regex-based
/// resolver cost more than validating a typical user-data.
enum YAML11Scalar {
    static func resolve(_ text: String) -> ConfigNode.Value {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON": return .bool(true)
        case "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF": return .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .float(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .float(-.infinity)
        case ".nan", ".NaN", ".NAN": return .float(.nan)
        default: break
        }
        let bytes = Array(text.utf8)
        if let value = integer(bytes) { return value }
        if let value = float(bytes) { return .float(value) }
        if isTimestamp(bytes) { return .date(text) }
        return .string(text)
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }

    /// [-+]? then 0b…, 0…(octal), 0x…, decimal, or base-60 (1:30).
    private static func integer(_ all: [UInt8]) -> ConfigNode.Value? {
        var bytes = ArraySlice(all)
        var negative = false
        if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        guard let first = bytes.first, isDigit(first) else { return nil }
        func digits(_ body: ArraySlice<UInt8>, radix: Int, allowed: (UInt8) -> Bool) -> ConfigNode.Value? {
            guard !body.isEmpty, body.allSatisfy({ allowed($0) || $0 == UInt8(ascii: "_") }) else { return nil }
            let cleaned = String(decoding: body.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
            guard !cleaned.isEmpty else { return nil }
            guard let magnitude = Int(cleaned, radix: radix) else { return .float(Double(cleaned) ?? 0) }
            return .int(negative ? -magnitude : magnitude)
        }
        if bytes.count >= 2, first == UInt8(ascii: "0") {
            let second = bytes[bytes.startIndex + 1]
            if second == UInt8(ascii: "b") { return digits(bytes.dropFirst(2), radix: 2) { $0 == 48 || $0 == 49 } }
            if second == UInt8(ascii: "x") {
                return digits(bytes.dropFirst(2), radix: 16) { isDigit($0) || (97...102).contains($0) || (65...70).contains($0) }
            }
            return digits(bytes.dropFirst(), radix: 8) { (48...55).contains($0) }
        }
        if bytes.contains(UInt8(ascii: ":")) {
            // Base 60: [1-9][0-9_]* then (:[0-5]?[0-9])+
            let parts = bytes.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
            guard first != UInt8(ascii: "0"), parts.count >= 2 else { return nil }
            guard case .int(let head)? = digits(parts[0], radix: 10, allowed: isDigit) else { return nil }
            var value = negative ? -head : head
            for part in parts.dropFirst() {
                guard (1...2).contains(part.count), part.allSatisfy(isDigit),
                      part.count == 1 || part[part.startIndex] <= UInt8(ascii: "5"),
                      let sixty = Int(String(decoding: part, as: UTF8.self)) else { return nil }
                let (scaled, o1) = value.multipliedReportingOverflow(by: 60)
                let (sum, o2) = scaled.addingReportingOverflow(negative ? -sixty : sixty)
                guard !o1, !o2 else { return nil }
                value = sum
            }
            return .int(value)
        }
        return digits(bytes, radix: 10, allowed: isDigit)
    }

    /// PyYAML floats need a dot: 1.5, -2., .5, 1.0e+3, 1:30.5 (base 60).
    private static func float(_ all: [UInt8]) -> Double? {
        var bytes = ArraySlice(all)
        var sign = 1.0
        if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            sign = first == UInt8(ascii: "-") ? -1 : 1
            bytes = bytes.dropFirst()
        }
        guard let dot = bytes.firstIndex(of: UInt8(ascii: ".")) else { return nil }
        let whole = bytes[..<dot]
        var rest = bytes[(dot + 1)...]
        var exponent: ArraySlice<UInt8> = []
        if let e = rest.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            exponent = rest[(e + 1)...]
            rest = rest[..<e]
            guard let mark = exponent.first, mark == UInt8(ascii: "-") || mark == UInt8(ascii: "+"),
                  exponent.count >= 2, exponent.dropFirst().allSatisfy(isDigit) else { return nil }
        }
        guard rest.allSatisfy({ isDigit($0) || $0 == UInt8(ascii: "_") }) else { return nil }
        if whole.isEmpty {
            guard !rest.isEmpty, sign == 1, all.first == UInt8(ascii: ".") else { return nil }
        } else if whole.contains(UInt8(ascii: ":")) {
            guard exponent.isEmpty else { return nil }
            let parts = whole.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
            guard let head = parts.first, let lead = head.first, isDigit(lead),
                  head.allSatisfy({ isDigit($0) || $0 == UInt8(ascii: "_") }) else { return nil }
            var value = Double(String(decoding: head.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)) ?? 0
            for part in parts.dropFirst() {
                guard (1...2).contains(part.count), part.allSatisfy(isDigit),
                      part.count == 1 || part[part.startIndex] <= UInt8(ascii: "5") else { return nil }
                value = value * 60 + (Double(String(decoding: part, as: UTF8.self)) ?? 0)
            }
            let fraction = Double("0." + String(decoding: rest.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)) ?? 0
            return sign * (value + fraction)
        } else {
            guard let lead = whole.first, isDigit(lead), whole.allSatisfy({ isDigit($0) || $0 == UInt8(ascii: "_") }) else { return nil }
        }
        let text = String(decoding: all.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
        return Double(text.hasSuffix(".") ? text + "0" : text) ?? Double(text.replacingOccurrences(of: ".e", with: ".0e"))
    }

    /// YYYY-MM-DD, or YYYY-M-D with a time part (PyYAML's timestamp).
    private static func isTimestamp(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 8, bytes[0...3].allSatisfy(isDigit), bytes[4] == UInt8(ascii: "-") else { return false }
        if bytes.count == 10, bytes[5...6].allSatisfy(isDigit), bytes[7] == UInt8(ascii: "-"), bytes[8...9].allSatisfy(isDigit) {
            return true
        }
        // With a time: date, then T/t or blanks, then H:MM:SS, fraction and zone optional.
        guard let separator = bytes.firstIndex(where: { $0 == UInt8(ascii: "T") || $0 == UInt8(ascii: "t") || $0 == UInt8(ascii: " ") || $0 == 9 }) else {
            return false
        }
        let date = bytes[5..<separator].split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
        guard date.count == 2, date.allSatisfy({ (1...2).contains($0.count) && $0.allSatisfy(isDigit) }) else { return false }
        var rest = bytes[separator...].drop { $0 == UInt8(ascii: "T") || $0 == UInt8(ascii: "t") || $0 == UInt8(ascii: " ") || $0 == 9 }
        let time = rest.prefix { isDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }
        let clock = time.split(separator: UInt8(ascii: "."), maxSplits: 1).first ?? []
        let pieces = clock.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        guard pieces.count == 3, (1...2).contains(pieces[0].count), pieces[1].count == 2, pieces[2].count == 2,
              pieces.allSatisfy({ $0.allSatisfy(isDigit) }) else { return false }
        rest = rest.dropFirst(time.count).drop { $0 == UInt8(ascii: " ") || $0 == 9 }
        if rest.isEmpty || Array(rest) == [UInt8(ascii: "Z")] { return true }
        guard let sign = rest.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { return false }
        let zone = rest.dropFirst().split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        return (1...2).contains(zone.count) && zone.allSatisfy { (1...2).contains($0.count) && $0.allSatisfy(isDigit) }
            && (zone.count == 1 || zone[1].count == 2)
    }
}

import Foundation
