/// Emits the YAML the seed generator writes: block style, every string double-quoted with
/// JSON-style escapes, so no value can change type (YAML 1.1 `yes`, `0755`) or break the
/// document, whatever bytes it holds.
enum YAMLText {
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                // C0/C1 controls, DEL, NEL, the Unicode line separators and BOM are escaped.
                let v = scalar.value
                if v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) || v == 0x2028 || v == 0x2029 || v == 0xFEFF {
                    out += "\\u" + String(v, radix: 16).leftPadded(4)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// A literal block (`|`) for multi-line text such as private keys: readable, and exact
    /// when every line is printable and the text ends in one newline.
    static func block(_ text: String, indent: Int) -> String {
        let printable = text.unicodeScalars.allSatisfy { $0 == "\n" || ($0.value >= 0x20 && $0.value != 0x7F && $0.value < 0x80) }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard printable, text.hasSuffix("\n"), !text.hasSuffix("\n\n"),
              lines.dropLast().allSatisfy({ !$0.isEmpty && !$0.hasPrefix(" ") && !$0.hasSuffix(" ") }) else {
            return quoted(text)
        }
        let pad = String(repeating: " ", count: indent)
        return "|\n" + lines.dropLast().map { pad + $0 }.joined(separator: "\n")
    }

    static func list(_ items: [String], indent: Int) -> String {
        let pad = String(repeating: " ", count: indent)
        return items.map { "\(pad)- \(quoted($0))" }.joined(separator: "\n")
    }
}
