/// Version ordering as rpm and dpkg see it, for kernel versions and BLS entries:
/// "6.10.0" > "6.9.12" (numbers compare as numbers), "6.1.0-28" > "6.1.0-9",
/// "6.8.0~rc1" < "6.8.0" (a tilde sorts before everything, even the end), "1.0^git1" > "1.0"
/// (a caret sorts after the end but before anything else), an optional "epoch:" prefix
/// dominates, and a "-" splits version from release so "1.0-2" < "1.0.1-1".
public enum VersionCompare {
    /// -1, 0 or 1 as `a` sorts before, equal to or after `b`.
    public static func compare(_ a: String, _ b: String) -> Int {
        let (epochA, restA) = splitEpoch(a)
        let (epochB, restB) = splitEpoch(b)
        if epochA != epochB {
            return compareNumeric(epochA, epochB)
        }
        let (versionA, releaseA) = splitRelease(restA)
        let (versionB, releaseB) = splitRelease(restB)
        let byVersion = compareSegments(Array(versionA.utf8), Array(versionB.utf8))
        if byVersion != 0 { return byVersion }
        switch (releaseA, releaseB) {
        case (nil, nil): return 0
        // "6.1.0" against "6.1.0-28": the one with a release is newer, as dpkg treats an
        // absent revision as the lowest.
        case (nil, _): return -1
        case (_, nil): return 1
        case let (ra?, rb?): return compareSegments(Array(ra.utf8), Array(rb.utf8))
        }
    }

    /// True when `a` sorts strictly before `b`.
    public static func isLess(_ a: String, _ b: String) -> Bool { compare(a, b) < 0 }

    private static func splitEpoch(_ s: Substring) -> (String, Substring) {
        if let colon = s.firstIndex(of: ":"), s[s.startIndex..<colon].allSatisfy(\.isASCIIDigitCharacter),
           colon > s.startIndex {
            return (String(s[s.startIndex..<colon]), s[s.index(after: colon)...])
        }
        return ("0", s)
    }

    private static func splitEpoch(_ s: String) -> (String, Substring) { splitEpoch(s[...]) }

    private static func splitRelease(_ s: Substring) -> (Substring, Substring?) {
        guard let dash = s.firstIndex(of: "-") else { return (s, nil) }
        return (s[s.startIndex..<dash], s[s.index(after: dash)...])
    }

    /// Numeric strings compared by value without overflow: strip leading zeros, then the
    /// longer is larger, then lexical.
    private static func compareNumeric(_ a: some StringProtocol, _ b: some StringProtocol) -> Int {
        let x = Array(a.utf8.drop(while: { $0 == UInt8(ascii: "0") }))
        let y = Array(b.utf8.drop(while: { $0 == UInt8(ascii: "0") }))
        if x.count != y.count { return x.count < y.count ? -1 : 1 }
        for (p, q) in zip(x, y) where p != q { return p < q ? -1 : 1 }
        return 0
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    private static func isAlpha(_ c: UInt8) -> Bool { (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }

    /// rpmvercmp: alternating runs of digits and letters, separators skipped; a numeric run
    /// beats an alphabetic one; "~" and "^" as documented above.
    private static func compareSegments(_ a: [UInt8], _ b: [UInt8]) -> Int {
        let tilde = UInt8(ascii: "~"), caret = UInt8(ascii: "^")
        var i = 0, j = 0
        while i < a.count || j < b.count {
            while i < a.count, !isDigit(a[i]), !isAlpha(a[i]), a[i] != tilde, a[i] != caret { i += 1 }
            while j < b.count, !isDigit(b[j]), !isAlpha(b[j]), b[j] != tilde, b[j] != caret { j += 1 }
            let aTilde = i < a.count && a[i] == tilde
            let bTilde = j < b.count && b[j] == tilde
            if aTilde || bTilde {
                if !(aTilde && bTilde) { return aTilde ? -1 : 1 }
                i += 1; j += 1
                continue
            }
            let aCaret = i < a.count && a[i] == caret
            let bCaret = j < b.count && b[j] == caret
            if aCaret || bCaret {
                if i >= a.count { return -1 }  // b has "^...", a ended: a is older
                if j >= b.count { return 1 }
                if !(aCaret && bCaret) { return aCaret ? -1 : 1 }
                i += 1; j += 1
                continue
            }
            if i >= a.count || j >= b.count { break }
            let numeric = isDigit(a[i])
            let startA = i, startB = j
            if numeric {
                while i < a.count, isDigit(a[i]) { i += 1 }
                while j < b.count, isDigit(b[j]) { j += 1 }
            } else {
                while i < a.count, isAlpha(a[i]) { i += 1 }
                while j < b.count, isAlpha(b[j]) { j += 1 }
            }
            let segA = a[startA..<i], segB = b[startB..<j]
            // Segments of different kinds: the numeric one is newer.
            if segB.isEmpty { return numeric ? 1 : -1 }
            let cmp: Int
            if numeric {
                cmp = compareNumeric(String(decoding: segA, as: UTF8.self), String(decoding: segB, as: UTF8.self))
            } else {
                cmp = segA.lexicographicallyPrecedes(segB) ? -1 : (segA == segB ? 0 : 1)
            }
            if cmp != 0 { return cmp }
        }
        let aLeft = i < a.count, bLeft = j < b.count
        if !aLeft && !bLeft { return 0 }
        return aLeft ? 1 : -1
    }
}

extension Character {
    fileprivate var isASCIIDigitCharacter: Bool { isASCII && isNumber }
}
