import Foundation

/// The one JSON dialect of every `--json` (docs/JSON.md): keys in kebab-case, as
/// `qemu-img info --output=json` spells them (Wisp's image verbs are qemu-img's, and their
/// JSON stays readable by the same scripts), sizes as integers in bytes, slashes unescaped,
/// keys sorted so output diffs cleanly. Values, dictionary keys included, are never changed.
enum JSONOutput {
    static func text<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        encoder.keyEncodingStrategy = .custom { path in
            JSONKey(stringValue: kebab(path.last?.stringValue ?? ""))
        }
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func print<T: Encodable>(_ value: T) throws {
        FileOutput.standardOutput(try text(value) + "\n")
    }

    /// `startOffset` → `start-offset`, `uniqueGUID` → `unique-guid`, `instance_id` →
    /// `instance-id`; keys already in kebab-case are kept.
    static func kebab(_ key: String) -> String {
        let characters = Array(key)
        var out = ""
        for (index, character) in characters.enumerated() {
            if character == "_" { out.append("-"); continue }
            if character.isUppercase, index > 0 {
                let previous = characters[index - 1]
                let next = index + 1 < characters.count ? characters[index + 1] : nil
                // A word starts at an upper-case letter after a lower-case one or a digit,
                // and at the last capital of an acronym followed by lower case (URLPath).
                if previous.isLowercase || previous.isNumber || (previous.isUppercase && next?.isLowercase == true) {
                    if out.last != "-" { out.append("-") }
                }
            }
            out.append(contentsOf: character.lowercased())
        }
        return out
    }

    private struct JSONKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
