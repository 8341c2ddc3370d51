/// One finding about user-data, worded like `cloud-init schema`: `path: message`, where path
/// is the dotted key path (`users.0.sudo`) or `format-lL.cC` for header and syntax errors.
public struct ValidationIssue: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Severity: String, Sendable, Codable { case error, warning }

    public var severity: Severity
    public var path: String
    public var message: String
    public var line: Int?
    public var column: Int?
    /// For MIME multipart user-data: which part ("part 2 (text/cloud-config)").
    public var part: String?

    public init(severity: Severity, path: String, message: String, line: Int? = nil, column: Int? = nil, part: String? = nil) {
        self.severity = severity
        self.path = path
        self.message = message
        self.line = line
        self.column = column
        self.part = part
    }

    public var description: String {
        var text = "\(severity.rawValue): "
        if let part { text += "\(part): " }
        if !path.isEmpty { text += "\(path): " }
        text += message
        if let line, !path.hasPrefix("format-l") {
            text += " (line \(line)" + (column.map { ", column \($0)" } ?? "") + ")"
        }
        return text
    }
}

extension Array where Element == ValidationIssue {
    public var hasErrors: Bool { contains { $0.severity == .error } }
}
