import ArgumentParser
import WispCore

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
            if let best = EditDistance.suggestion(for: word, among: names) { sentence += "; did you mean '\(prefix) \(best)'?" }
            return sentence + " (see '\(prefix) --help')"
        }
        return nil
    }
}
