import Foundation

/// A `WWW-Authenticate` challenge: `Bearer realm="...",service="...",scope="..."` or
/// `Basic realm="..."` (RFC 7235 auth-params, quoted strings with escapes).
struct RegistryAuthChallenge: Sendable, Equatable {
    var scheme: String
    var parameters: [String: String]

    init?(_ header: String) {
        let trimmed = header.drop { $0 == " " }
        guard let space = trimmed.firstIndex(of: " ") else {
            guard !trimmed.isEmpty else { return nil }
            scheme = trimmed.lowercased()
            parameters = [:]
            return
        }
        scheme = trimmed[..<space].lowercased()
        var parameters: [String: String] = [:]
        var rest = Substring(trimmed[trimmed.index(after: space)...])
        while true {
            rest = rest.drop { $0 == " " || $0 == "," }
            guard let equals = rest.firstIndex(of: "=") else { break }
            let key = rest[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                var end = rest.endIndex
                for index in rest.indices {
                    let c = rest[index]
                    if escaped { value.append(c); escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { end = index; break } else { value.append(c) }
                }
                rest = end < rest.endIndex ? rest[rest.index(after: end)...] : ""
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = rest[..<end].trimmingCharacters(in: .whitespaces)
                rest = rest[end...]
            }
            parameters[key] = value
        }
        self.parameters = parameters
    }
}
