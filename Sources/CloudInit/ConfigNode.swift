import Yams

/// A parsed YAML value with the types PyYAML's safe_load gives cloud-init (YAML 1.1: `yes`
/// is a boolean, `2023-01-01` a date), and where it sits in the file.
struct ConfigNode: Sendable {
    indirect enum Value: Sendable {
        case null
        case bool(Bool)
        case int(Int)
        case float(Double)
        case string(String)
        /// A YAML 1.1 timestamp: PyYAML makes a date, which no schema type accepts as a string.
        case date(String)
        case array([ConfigNode])
        case object([(key: String, value: ConfigNode)])
    }

    var value: Value
    var line: Int?
    var column: Int?

    /// Too many nodes means alias expansion ("billion laughs") or a hostile document.
    static let maximumNodes = 250_000

    struct TooLarge: Error {}

    static func from(_ node: Node, budget: inout Int) throws -> ConfigNode {
        budget -= 1
        guard budget >= 0 else { throw TooLarge() }
        let line = node.mark?.line, column = node.mark?.column
        switch node {
        case .scalar(let scalar):
            let value: Value
            let tag = node.tag.description
            if scalar.style == .plain && (tag == Tag.Name.str.rawValue || tag == Tag.Name.implicit.rawValue) {
                // Parsed with Resolver.basic: plain scalars are typed here, the way PyYAML does.
                value = YAML11Scalar.resolve(scalar.string)
            } else {
                switch Tag.Name(rawValue: tag) {
                case .null: value = .null
                case .bool: value = node.bool.map(Value.bool) ?? .string(scalar.string)
                case .int: value = node.int.map(Value.int) ?? .float(node.float ?? 0)
                case .float: value = node.float.map(Value.float) ?? .string(scalar.string)
                case .timestamp: value = .date(scalar.string)
                default: value = .string(scalar.string)
                }
            }
            return ConfigNode(value: value, line: line, column: column)
        case .sequence(let sequence):
            var items: [ConfigNode] = []
            for item in sequence { items.append(try from(item, budget: &budget)) }
            return ConfigNode(value: .array(items), line: line, column: column)
        case .mapping(let mapping):
            var pairs: [(key: String, value: ConfigNode)] = []
            // Where each key sits in `pairs`: duplicates are found in constant time, so a
            // mapping of 120,000 keys converts in linear time (a scan of `pairs` per key
            // took 23 s for 100,000: issue 16, failure 4).
            var positions: [String: Int] = [:]
            for (key, value) in mapping {
                let keyText = key.scalar?.string ?? "\(key)"
                let converted = try from(value, budget: &budget)
                // PyYAML keeps the last of duplicate keys.
                if let index = positions[keyText] {
                    pairs[index].value = converted
                } else {
                    positions[keyText] = pairs.count
                    pairs.append((keyText, converted))
                }
            }
            return ConfigNode(value: .object(pairs), line: line, column: column)
        }
    }

    /// Python's repr(), so messages read like `cloud-init schema`'s.
    var pythonRepr: String {
        switch value {
        case .null: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .float(let f): return String(f)
        case .string(let s): return Self.quote(s)
        case .date(let s): return "datetime.date(\(s))"
        case .array(let items): return "[" + items.map(\.pythonRepr).joined(separator: ", ") + "]"
        case .object(let pairs):
            return "{" + pairs.map { "\(Self.quote($0.key)): \($0.value.pythonRepr)" }.joined(separator: ", ") + "}"
        }
    }

    /// The longest value quoted in a message; a schema error about a 4 MB `chpasswd.list`
    /// must not print it back (issue 16).
    static let messageReprLimit = 200

    /// `pythonRepr` cut to a readable length, saying how long the whole value is.
    var messageRepr: String {
        let whole = pythonRepr
        let count = whole.count
        guard count > Self.messageReprLimit else { return whole }
        return String(whole.prefix(Self.messageReprLimit)) + "... (\(count) characters in all)"
    }

    static func quote(_ s: String) -> String {
        let useDouble = s.contains("'") && !s.contains("\"")
        var out = useDouble ? "\"" : "'"
        for ch in s.unicodeScalars {
            switch ch {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "'" where !useDouble: out += "\\'"
            default:
                if ch.value < 0x20 || ch.value == 0x7F { out += "\\x" + String(ch.value, radix: 16).leftPadded(2) } else { out.unicodeScalars.append(ch) }
            }
        }
        return out + (useDouble ? "\"" : "'")
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
