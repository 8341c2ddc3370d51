/// How far apart two words are, for "did you mean" suggestions (mistyped verbs, config
/// keys): Damerau-Levenshtein in its optimal-string-alignment form, so a swapped pair of
/// letters is one edit.
public enum EditDistance {
    public static func between(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }

    /// The nearest of `names` if near enough to be a typo (a third of its length, at least
    /// 2), else a name `word` is a prefix of.
    public static func suggestion(for word: String, among names: [String]) -> String? {
        let scored = names.map { ($0, between(word, $0)) }.sorted { $0.1 < $1.1 }
        if let (name, score) = scored.first, score <= max(2, name.count / 3) { return name }
        return names.first { word.count >= 2 && $0.hasPrefix(word) }
    }
}
