import ArgumentParser

/// "wisp rnu" → "'rnu' is not a wisp command; did you mean 'wisp run'?": checked before
/// ArgumentParser, whose own message for a mistyped verb is "Unexpected argument".
enum CommandSuggestion {
    /// The sentence for the first word that should name a subcommand and names none; nil when
    /// the words are fine (or are options, left to the parser).
    static func unknownCommand(_ arguments: [String], root: any ParsableCommand.Type = Wisp.self) -> String? {
        var command = root
        var path = [root._commandName]
        for word in arguments {
            if word.hasPrefix("-") || word == "help" { return nil }
            let subcommands = command.configuration.subcommands
            guard !subcommands.isEmpty, command.configuration.defaultSubcommand == nil else { return nil }
            if let next = subcommands.first(where: { $0._commandName == word || $0.configuration.aliases.contains(word) }) {
                command = next
                path.append(word)
                continue
            }
            let prefix = path.joined(separator: " ")
            let names = subcommands.flatMap { [$0._commandName] + $0.configuration.aliases }
            var sentence = "'\(word)' is not a \(prefix) command"
            if let best = closest(word, among: names) { sentence += "; did you mean '\(prefix) \(best)'?" }
            return sentence + " (see '\(prefix) --help')"
        }
        return nil
    }

    /// The nearest name by edit distance, if near enough to be a typo (a third of its length,
    /// at least 2), or a name the word is a prefix of.
    static func closest(_ word: String, among names: [String]) -> String? {
        let scored = names.map { ($0, distance(word, $0)) }.sorted { $0.1 < $1.1 }
        if let (name, score) = scored.first, score <= max(2, name.count / 3) { return name }
        return names.first { word.count >= 2 && $0.hasPrefix(word) }
    }

    /// Damerau-Levenshtein (optimal string alignment): a swapped pair of letters is one edit.
    static func distance(_ a: String, _ b: String) -> Int {
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
}
