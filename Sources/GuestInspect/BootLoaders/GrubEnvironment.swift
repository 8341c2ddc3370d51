import WispCore

/// GRUB's environment block (/boot/grub/grubenv, /boot/grub2/grubenv, the ESP's copy):
/// a 1 KiB file starting "# GRUB Environment Block", `name=value` lines, '#' padding.
/// grub-editenv escapes backslash and newline in values with a backslash.
public enum GrubEnvironment {
    public static let header = "# GRUB Environment Block"

    public static func parse(_ bytes: [UInt8], source: String) throws -> [String: String] {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasPrefix(header) else {
            throw WispError.corrupt(source, "GRUB environment block", at: 0, "expected \"\(header)\" at the start")
        }
        var vars: [String: String] = [:]
        var lines: [String] = []
        // Join backslash-newline continuations (an escaped newline inside a value).
        var current = ""
        var escaped = false
        for c in text.dropFirst(header.count) {
            if escaped {
                current.append(c == "n" ? "\n" : c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else if c == "\n" {
                lines.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        lines.append(current)
        for line in lines {
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "="), eq > line.startIndex else { continue }
            vars[String(line[line.startIndex..<eq])] = String(line[line.index(after: eq)...])
        }
        return vars
    }
}
