import Foundation
import WispCompression
import Yams

/// Checks user-data before it goes into a seed, the way `cloud-init schema --config-file`
/// does for cloud-config (header, YAML syntax with line and column, types of the common
/// modules' keys), and passes through what cloud-init hands to other handlers: `#!` scripts,
/// `#include` lists, boothooks, `## template: jinja` templates. MIME multipart user-data is
/// split and each part checked; gzip-compressed user-data is unpacked first.
public struct UserDataValidator: Sendable {
    public enum Kind: String, Sendable, Codable {
        case cloudConfig = "cloud-config"
        case script = "script"
        case include = "include"
        case jinjaTemplate = "jinja-template"
        case multipart = "multipart"
        case bootHook = "boothook"
        case partHandler = "part-handler"
        case cloudConfigArchive = "cloud-config-archive"
        case gzip = "gzip"
        case unknown = "unknown"
    }

    /// cloud-init reads user-data into memory whole; beyond this it is almost surely a mistake.
    public static let maximumSize = 16 << 20
    /// Nesting beyond this is refused before YAML parsing (deep recursion in the parser).
    public static let maximumNesting = YAMLPreflight.maximumNesting

    /// Unknown top-level keys warned about one by one; the rest are counted.
    static let maximumUnknownKeyWarnings = 50

    /// The name used in messages (`cloud-init schema` prints the file name).
    public var fileName: String

    public init(fileName: String = "user-data") { self.fileName = fileName }

    public func kind(of bytes: [UInt8]) -> Kind {
        if bytes.starts(with: [0x1F, 0x8B]) { return .gzip }
        let head = String(decoding: bytes.prefix(256), as: UTF8.self)
        let firstLine = head.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let lower = head.lowercased()
        if firstLine.hasPrefix("#cloud-config-archive") { return .cloudConfigArchive }
        if firstLine.hasPrefix("#cloud-config") { return .cloudConfig }
        if firstLine.hasPrefix("#!") { return .script }
        if firstLine.hasPrefix("#include") { return .include }
        if firstLine.hasPrefix("#cloud-boothook") { return .bootHook }
        if firstLine.hasPrefix("#part-handler") { return .partHandler }
        if firstLine.lowercased().hasPrefix("## template:") { return .jinjaTemplate }
        if lower.hasPrefix("content-type: multipart/") || lower.hasPrefix("mime-version:") { return .multipart }
        return .unknown
    }

    public func validate(_ bytes: [UInt8]) -> [ValidationIssue] {
        validate(bytes, depth: 0, part: nil)
    }

    private func issue(_ path: String, _ message: String, part: String?, severity: ValidationIssue.Severity = .error,
                       line: Int? = nil, column: Int? = nil) -> ValidationIssue {
        ValidationIssue(severity: severity, path: path, message: message, line: line, column: column, part: part)
    }

    private func validate(_ bytes: [UInt8], depth: Int, part: String?) -> [ValidationIssue] {
        guard bytes.count <= Self.maximumSize else {
            return [issue("", "\(fileName) is \(bytes.count) bytes; Wisp accepts at most \(Self.maximumSize) (cloud-init reads it whole into memory)", part: part)]
        }
        switch kind(of: bytes) {
        case .gzip:
            guard depth < 2 else { return [issue("", "gzip inside gzip is not user-data cloud-init reads", part: part)] }
            do {
                let inner = try Deflate.inflate(bytes, framing: .gzip, limit: Self.maximumSize, context: fileName)
                return validate(inner, depth: depth + 1, part: part)
            } catch {
                return [issue("", "\(fileName) starts like gzip but does not decompress: \(error)", part: part)]
            }
        case .cloudConfig:
            return validateCloudConfig(bytes, part: part, requireHeader: true)
        case .multipart:
            guard depth < 4 else { return [issue("", "multipart nested more than 4 deep", part: part)] }
            return validateMultipart(bytes, depth: depth)
        case .jinjaTemplate:
            // Rendered by cloud-init with instance data first; only the inner header is checked.
            let text = String(decoding: bytes, as: UTF8.self)
            let rest = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).dropFirst().first.map(String.init) ?? ""
            if rest.hasPrefix("#cloud-config") || rest.hasPrefix("#!") { return [] }
            return [issue("format-l2.c1", "Jinja template \(fileName) must continue with \"#cloud-config\" or \"#!\" on its second line", part: part)]
        case .include:
            return validateInclude(bytes, part: part)
        case .script, .bootHook, .partHandler, .cloudConfigArchive:
            guard isValidUTF8(bytes) else {
                return [issue("", "\(fileName) is not valid UTF-8 text", part: part)]
            }
            return []
        case .unknown:
            if !isValidUTF8(bytes) {
                return [issue("format-l1.c1", "File \(fileName) is neither UTF-8 text nor gzip: cloud-init would ignore it", part: part)]
            }
            return [issue("format-l1.c1", "File \(fileName) needs to begin with \"#cloud-config\"", part: part)]
        }
    }

    private func validateInclude(_ bytes: [UInt8], part: String?) -> [ValidationIssue] {
        let text = String(decoding: bytes, as: UTF8.self)
        var issues: [ValidationIssue] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().dropFirst() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if !(line.hasPrefix("http://") || line.hasPrefix("https://")) {
                issues.append(issue("format-l\(index + 1).c1", "#include line \(ConfigNode(value: .string(line)).messageRepr) is not an http(s) URL", part: part, severity: .warning))
            }
        }
        return issues
    }

    /// Validates cloud-config text; `requireHeader` is false for multipart parts whose
    /// Content-Type already says text/cloud-config.
    func validateCloudConfig(_ bytes: [UInt8], part: String?, requireHeader: Bool) -> [ValidationIssue] {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            let offset = Self.firstInvalidUTF8(bytes)
            return [issue("format-l1.c1", "File \(fileName) is not valid UTF-8 (first bad byte at offset \(offset))", part: part)]
        }
        if requireHeader && !text.hasPrefix("#cloud-config") {
            return [issue("format-l1.c1", "File \(fileName) needs to begin with \"#cloud-config\"", part: part)]
        }
        if let excess = YAMLPreflight.excess(in: text) {
            return [issue("format-l\(excess.line).c\(excess.column)", "File \(fileName) \(excess.sentence)", part: part,
                          line: excess.line, column: excess.column)]
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text, Resolver.basic)
        } catch let error as YamlError {
            let (line, column, problem) = Self.describe(error)
            return [issue("format-l\(line).c\(column)", "File \(fileName) is not valid yaml. \(problem)", part: part, line: line, column: column)]
        } catch {
            return [issue("format-l1.c1", "File \(fileName) is not valid yaml. \(error)", part: part)]
        }
        guard let root else {
            return [issue("", "Cloud-config is not a YAML dict.", part: part)]
        }
        var budget = ConfigNode.maximumNodes
        let config: ConfigNode
        do {
            config = try ConfigNode.from(root, budget: &budget)
        } catch {
            return [issue("", "\(fileName) expands to more than \(ConfigNode.maximumNodes) YAML nodes (aliases?)", part: part)]
        }
        guard case .object(let pairs) = config.value else {
            return [issue("", "Cloud-config is not a YAML dict.", part: part)]
        }
        var findings = SchemaFindings()
        var issues: [ValidationIssue] = []
        var unknownKeys = 0
        for (key, value) in pairs {
            if let schema = CloudConfigModules.schemas[key] {
                schema.check(value, path: key, into: &findings)
                if let note = schema.deprecated, schema.oneOf.isEmpty {
                    findings.deprecations.append((key, "DEPRECATED: \(note)", value.line, value.column))
                }
            } else if !CloudConfigModules.knownKeys.contains(key) {
                unknownKeys += 1
                // A warning each for the first few; a document of 100,000 made-up keys gets
                // one line for the rest, not 100,000 spelling suggestions.
                guard unknownKeys <= Self.maximumUnknownKeyWarnings else { continue }
                let shown = ConfigNode(value: .string(key)).messageRepr
                var message = "unknown top-level key \(shown): no cloud-init module reads it"
                if let guess = Self.closest(to: key) { message += " (did you mean '\(guess)'?)" }
                issues.append(issue(String(key.prefix(ConfigNode.messageReprLimit)), message, part: part, severity: .warning,
                                    line: value.line.map { max(1, $0 - 0) }, column: nil))
            }
        }
        if unknownKeys > Self.maximumUnknownKeyWarnings {
            issues.append(issue("", "\(unknownKeys - Self.maximumUnknownKeyWarnings) more unknown top-level keys not listed", part: part, severity: .warning))
        }
        issues += findings.errors.map { issue($0.path, $0.message, part: part, line: $0.line, column: $0.column) }
        issues += findings.deprecations.map { issue($0.path, $0.message, part: part, severity: .warning, line: $0.line, column: $0.column) }
        return issues
    }

    // MARK: multipart

    private func validateMultipart(_ bytes: [UInt8], depth: Int) -> [ValidationIssue] {
        guard let message = MIMEMessage(bytes) else {
            return [issue("", "\(fileName) declares MIME multipart but has no boundary or no parts", part: nil)]
        }
        var issues: [ValidationIssue] = []
        for (index, part) in message.parts.enumerated() {
            let label = "part \(index + 1) (\(part.contentType))"
            switch part.contentType {
            case "text/cloud-config":
                issues += validateCloudConfig(part.body, part: label, requireHeader: false)
            case "text/x-shellscript", "text/x-shellscript-per-boot", "text/x-shellscript-per-instance",
                 "text/x-shellscript-per-once", "text/cloud-boothook", "text/part-handler", "text/x-include-url",
                 "text/x-include-once-url", "text/cloud-config-archive", "text/jinja2", "text/upstart-job":
                break
            case "text/plain", "text/x-not-multipart", "application/octet-stream":
                // cloud-init sniffs these by their first line.
                issues += validate(part.body, depth: depth + 1, part: label).filter {
                    !($0.path == "format-l1.c1" && $0.message.hasSuffix("needs to begin with \"#cloud-config\""))
                }
            case let type where type.hasPrefix("multipart/"):
                issues += validate(part.raw, depth: depth + 1, part: label)
            default:
                issues.append(issue("", "content type \(part.contentType) has no cloud-init handler; the part will be ignored", part: label, severity: .warning))
            }
        }
        return issues
    }

    // MARK: helpers

    static func describe(_ error: YamlError) -> (Int, Int, String) {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let prefix = context.map { "\($0.text) " } ?? ""
            return (mark.line, mark.column, "\(prefix)\(problem) in line \(mark.line), column \(mark.column)")
        case .reader(let problem, _, _, _):
            return (1, 1, problem)
        default:
            return (1, 1, "\(error)")
        }
    }

    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int {
        var low = 0, high = bytes.count
        // The longest valid prefix, by bisection over String(validating:).
        while low < high {
            let mid = (low + high + 1) / 2
            if isValidUTF8(bytes[0..<mid]) || (mid < bytes.count && isValidUTF8(bytes[0..<min(bytes.count, mid + 3)])) {
                low = mid
            } else {
                high = mid - 1
            }
        }
        return low
    }

    /// The known key nearest in edit distance, if it is close enough to be a typo.
    static func closest(to key: String) -> String? {
        var best: (String, Int)?
        for candidate in CloudConfigModules.knownKeys {
            let distance = editDistance(key, candidate)
            if distance <= max(1, key.count / 4), distance < (best?.1 ?? Int.max) { best = (candidate, distance) }
        }
        return best?.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        guard a.count < 200, b.count < 200 else { return Int.max }
        guard !a.isEmpty else { return b.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// True when `bytes` are valid UTF-8.
func isValidUTF8<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
    String(validating: bytes, as: UTF8.self) != nil
}
