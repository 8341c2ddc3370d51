/// /etc/os-release (or /usr/lib/os-release): shell-style KEY=value lines.
public struct OSRelease: Sendable, Codable, Equatable {
    public var id: String?
    public var versionID: String?
    public var name: String?
    public var prettyName: String?
    public var version: String?
    public var idLike: String?
    public var variantID: String?

    public init(id: String? = nil, versionID: String? = nil, name: String? = nil, prettyName: String? = nil,
                version: String? = nil, idLike: String? = nil, variantID: String? = nil) {
        self.id = id
        self.versionID = versionID
        self.name = name
        self.prettyName = prettyName
        self.version = version
        self.idLike = idLike
        self.variantID = variantID
    }

    public init(parsing text: String) {
        let fields = Self.fields(text)
        id = fields["ID"]
        versionID = fields["VERSION_ID"]
        name = fields["NAME"]
        prettyName = fields["PRETTY_NAME"]
        version = fields["VERSION"]
        idLike = fields["ID_LIKE"]
        variantID = fields["VARIANT_ID"]
    }

    /// KEY=value pairs with the quoting os-release(5) allows: "..." (with \" \\ \$ \`
    /// escapes), '...', or bare words. Malformed lines are skipped, as systemd does.
    public static func fields(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = String(rawLine).trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "="), eq > line.startIndex else { continue }
            let key = String(line[line.startIndex..<eq])
            guard key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { continue }
            var value = Substring(line[line.index(after: eq)...])
            var out = ""
            if value.first == "\"" {
                value.removeFirst()
                var escaped = false
                for c in value {
                    if escaped { out.append(c); escaped = false; continue }
                    if c == "\\" { escaped = true; continue }
                    if c == "\"" { break }
                    out.append(c)
                }
            } else if value.first == "'" {
                value.removeFirst()
                out = String(value.prefix { $0 != "'" })
            } else {
                out = String(value)
            }
            result[key] = out
        }
        return result
    }
}
