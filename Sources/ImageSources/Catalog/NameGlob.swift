/// A file-name pattern with `*` (any run of characters) and `?` (one character), as the
/// catalog writes build directories and image names whose version part changes. Matched
/// with the linear two-pointer method: no backtracking blow-up on a hostile listing.
struct NameGlob: Sendable, Equatable {
    let pattern: [UInt8]

    init(_ pattern: String) { self.pattern = Array(pattern.utf8) }

    var isLiteral: Bool { !pattern.contains(UInt8(ascii: "*")) && !pattern.contains(UInt8(ascii: "?")) }

    func matches(_ name: String) -> Bool {
        let text = Array(name.utf8)
        var p = 0, t = 0
        var star = -1, resume = 0
        while t < text.count {
            if p < pattern.count && (pattern[p] == UInt8(ascii: "?") || pattern[p] == text[t]) && pattern[p] != UInt8(ascii: "*") {
                p += 1; t += 1
            } else if p < pattern.count && pattern[p] == UInt8(ascii: "*") {
                star = p; resume = t; p += 1
            } else if star >= 0 {
                p = star + 1; resume += 1; t = resume
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }

    /// The newest of `names` matching: versions compared number by number ("9.10" after
    /// "9.9", "20250814-2204" after "20250804-2194"), so the latest build wins.
    func newest(in names: [String]) -> String? {
        names.filter(matches).max(by: { Self.versionOrder($0, $1) })
    }

    /// True when `a` sorts before `b`, digit runs compared as numbers.
    static func versionOrder(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var i = 0, j = 0
        func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
        while i < x.count && j < y.count {
            if isDigit(x[i]) && isDigit(y[j]) {
                var ei = i, ej = j
                while ei < x.count && isDigit(x[ei]) { ei += 1 }
                while ej < y.count && isDigit(y[ej]) { ej += 1 }
                // Compare digit runs without converting (they may be longer than any Int).
                let dx = x[i..<ei].drop { $0 == 48 }, dy = y[j..<ej].drop { $0 == 48 }
                if dx.count != dy.count { return dx.count < dy.count }
                if !dx.elementsEqual(dy) { return dx.lexicographicallyPrecedes(dy) }
                i = ei; j = ej
            } else {
                if x[i] != y[j] { return x[i] < y[j] }
                i += 1; j += 1
            }
        }
        return x.count - i < y.count - j
    }
}
