import ArgumentParser
import Foundation
import WispCore

/// How every failure reaches the user: one line starting `wisp:` (ArgumentParser's usage
/// errors keep their usage line, for the command that failed), and the documented exit
/// status. Raw Foundation or runtime text never reaches the user (`ForeignErrorTranslation`).
enum ErrorReport {
    static func print(_ error: any Error) {
        // --help and --version arrive as errors too; they go to standard output.
        if ForeignErrorTranslation.wispError(error) == nil, Wisp.exitCode(for: error) == .success {
            FileOutput.standardOutput(message(error))
        } else {
            FileOutput.standardError(message(error))
        }
    }

    static func message(_ error: any Error) -> String {
        // Foundation's and the runtime's errors are translated into a sentence; only
        // ArgumentParser's own (usage, --help, validation) print themselves.
        if let error = ForeignErrorTranslation.wispError(error) { return "wisp: \(error.message)\n" }
        let code = Wisp.exitCode(for: error)
        var text = Wisp.fullMessage(for: error)
        if text.isEmpty { return "" }
        if code == .success { return text.hasSuffix("\n") ? text : text + "\n" }
        if text.hasPrefix("Error: ") {
            text = "wisp: " + lowercasedFirst(String(text.dropFirst("Error: ".count)))
        } else if !text.hasPrefix("wisp") {
            text = "wisp: \(text)"
        }
        return text.hasSuffix("\n") ? text : text + "\n"
    }

    static func status(_ error: any Error) -> Int32 {
        if let error = ForeignErrorTranslation.wispError(error) { return ExitStatus.of(error) }
        return Wisp.exitCode(for: error).rawValue
    }

    /// "Unknown option" → "unknown option", leaving acronyms ("IMAGE ...") alone.
    static func lowercasedFirst(_ text: String) -> String {
        guard let first = text.first, first.isUppercase else { return text }
        let second = text.dropFirst().first
        if let second, second.isUppercase { return text }
        return first.lowercased() + text.dropFirst()
    }
}
