/// The JSON-schema subset cloud-init's cloud-config schema uses, enough to check the common
/// modules the way `cloud-init schema` (jsonschema) does and word the errors the same way.
struct CloudConfigSchema: Sendable {
    enum JSONType: String, Sendable { case string, integer, number, boolean, null, array, object }

    var types: [JSONType]?
    var enumValues: [ConfigNode.Value]?
    var properties: [String: CloudConfigSchema] = [:]
    /// Keys matching the predicate take `patternSchema` (patternProperties with one pattern).
    var patternKey: (@Sendable (String) -> Bool)?
    var patternSchema: [CloudConfigSchema] = []
    var additionalProperties = true
    var required: [String] = []
    var items: [CloudConfigSchema] = []
    var minItems: Int?
    var maxItems: Int?
    var uniqueItems = false
    var minProperties: Int?
    var oneOf: [CloudConfigSchema] = []
    var anyOf: [CloudConfigSchema] = []
    var minimum: Int?
    /// A string pattern: the predicate and the regex text jsonschema would print.
    var pattern: (@Sendable (String) -> Bool, String)?
    var uriFormat = false
    var deprecated: String?

    init(_ types: [JSONType]? = nil) { self.types = types }

    // MARK: building blocks

    static let string = CloudConfigSchema([.string])
    static let boolean = CloudConfigSchema([.boolean])
    static let integer = CloudConfigSchema([.integer])
    static let null = CloudConfigSchema([.null])
    static let anything = CloudConfigSchema()

    static func array(_ item: CloudConfigSchema? = nil, minItems: Int? = nil, maxItems: Int? = nil, unique: Bool = false) -> CloudConfigSchema {
        var schema = CloudConfigSchema([.array])
        schema.items = item.map { [$0] } ?? []
        schema.minItems = minItems
        schema.maxItems = maxItems
        schema.uniqueItems = unique
        return schema
    }

    static func object(_ properties: [String: CloudConfigSchema], required: [String] = [],
                       additional: Bool = false, minProperties: Int? = nil) -> CloudConfigSchema {
        var schema = CloudConfigSchema([.object])
        schema.properties = properties
        schema.required = required
        schema.additionalProperties = additional
        schema.minProperties = minProperties
        return schema
    }

    static func map(_ value: CloudConfigSchema, keys: @escaping @Sendable (String) -> Bool = { !$0.isEmpty },
                    minProperties: Int? = nil) -> CloudConfigSchema {
        var schema = CloudConfigSchema([.object])
        schema.patternKey = keys
        schema.patternSchema = [value]
        schema.additionalProperties = false
        schema.minProperties = minProperties
        return schema
    }

    static func oneOf(_ choices: CloudConfigSchema...) -> CloudConfigSchema {
        var schema = CloudConfigSchema()
        schema.oneOf = choices
        return schema
    }

    static func enumeration(_ values: [ConfigNode.Value], types: [JSONType]? = nil) -> CloudConfigSchema {
        var schema = CloudConfigSchema(types)
        schema.enumValues = values
        return schema
    }

    func deprecated(_ note: String) -> CloudConfigSchema {
        var copy = self
        copy.deprecated = note
        return copy
    }

    func with(_ change: (inout CloudConfigSchema) -> Void) -> CloudConfigSchema {
        var copy = self
        change(&copy)
        return copy
    }
}

/// Outcome of checking one value: errors make it invalid; deprecations are warnings.
struct SchemaFindings {
    var errors: [(path: String, message: String, line: Int?, column: Int?)] = []
    var deprecations: [(path: String, message: String, line: Int?, column: Int?)] = []
}

extension CloudConfigSchema {
    func check(_ node: ConfigNode, path: String, into findings: inout SchemaFindings) {
        func fail(_ message: String) { findings.errors.append((path, message, node.line, node.column)) }

        if let types, !types.contains(where: { Self.matches(node.value, $0) }) {
            let list = types.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            fail("\(node.messageRepr) is not of type \(list)")
            return
        }
        if let enumValues, !enumValues.contains(where: { Self.equal($0, node.value) }) {
            let list = enumValues.map { ConfigNode(value: $0).pythonRepr }.joined(separator: ", ")
            fail("\(node.messageRepr) is not one of [\(list)]")
        }
        if !oneOf.isEmpty {
            var valid: [CloudConfigSchema] = []
            var branchFindings = SchemaFindings()
            for choice in oneOf {
                var scratch = SchemaFindings()
                choice.check(node, path: path, into: &scratch)
                if scratch.errors.isEmpty {
                    valid.append(choice)
                    branchFindings.deprecations += scratch.deprecations
                }
            }
            if valid.isEmpty {
                fail("\(node.messageRepr) is not valid under any of the given schemas")
                return
            } else if valid.count > 1 {
                fail("\(node.messageRepr) is valid under each of \(valid.count) of the given schemas")
                return
            }
            findings.deprecations += branchFindings.deprecations
            if let note = valid[0].deprecated {
                findings.deprecations.append((path, "DEPRECATED: \(note)", node.line, node.column))
            }
        }
        if !anyOf.isEmpty {
            let anyValid = anyOf.contains { choice in
                var scratch = SchemaFindings()
                choice.check(node, path: path, into: &scratch)
                return scratch.errors.isEmpty
            }
            if !anyValid { fail("\(node.messageRepr) is not valid under any of the given schemas") }
        }
        switch node.value {
        case .string(let text):
            if let (predicate, regex) = pattern, !predicate(text) { fail("\(node.messageRepr) does not match '\(regex)'") }
            if uriFormat, !Self.looksLikeURI(text) { fail("\(node.messageRepr) is not a 'uri'") }
        case .int(let number):
            if let minimum, number < minimum { fail("\(number) is less than the minimum of \(minimum)") }
        case .array(let elements):
            if let minItems, elements.count < minItems { fail("\(node.messageRepr) is too short") }
            if let maxItems, elements.count > maxItems { fail("\(node.messageRepr) is too long") }
            if uniqueItems {
                let reprs = elements.map(\.pythonRepr)
                if Set(reprs).count != reprs.count { fail("\(node.messageRepr) has non-unique elements") }
            }
            if let item = items.first {
                for (index, element) in elements.enumerated() {
                    item.check(element, path: path.isEmpty ? "\(index)" : "\(path).\(index)", into: &findings)
                }
            }
        case .object(let pairs):
            if let minProperties, pairs.count < minProperties { fail("\(node.messageRepr) does not have enough properties") }
            for name in required where !pairs.contains(where: { $0.key == name }) {
                fail("\(ConfigNode.quote(name)) is a required property")
            }
            var unexpected: [String] = []
            for (key, value) in pairs {
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                if let property = properties[key] {
                    property.check(value, path: childPath, into: &findings)
                    // A deprecated key (not a deprecated oneOf branch, reported above).
                    if let note = property.deprecated, property.oneOf.isEmpty {
                        findings.deprecations.append((childPath, "DEPRECATED: \(note)", value.line, value.column))
                    }
                } else if let patternKey, patternKey(key), let valueSchema = patternSchema.first {
                    valueSchema.check(value, path: childPath, into: &findings)
                } else if !additionalProperties {
                    unexpected.append(key)
                }
            }
            if !unexpected.isEmpty {
                let names = unexpected.map(ConfigNode.quote).joined(separator: ", ")
                fail("Additional properties are not allowed (\(names) \(unexpected.count == 1 ? "was" : "were") unexpected)")
            }
        default:
            break
        }
    }

    static func matches(_ value: ConfigNode.Value, _ type: JSONType) -> Bool {
        switch (type, value) {
        case (.string, .string), (.boolean, .bool), (.null, .null), (.array, .array), (.object, .object),
             (.integer, .int), (.number, .int), (.number, .float):
            return true
        case (.integer, .float(let f)):
            return f.rounded() == f
        default:
            return false
        }
    }

    /// Python equality for enum checks (True == 1 there too, but jsonschema separates bools).
    static func equal(_ a: ConfigNode.Value, _ b: ConfigNode.Value) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.null, .null): return true
        default: return false
        }
    }

    /// RFC 3986 shape, as the rfc3987 checker jsonschema uses: a scheme, then no spaces.
    static func looksLikeURI(_ text: String) -> Bool {
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex else { return false }
        let scheme = text[..<colon]
        guard let first = scheme.unicodeScalars.first, first.properties.isAlphabetic, first.isASCII,
              scheme.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "+-.".unicodeScalars.contains($0)) })
        else { return false }
        let forbidden = Set(" \"<>\\^`{|}".unicodeScalars)
        return !text.unicodeScalars.contains { forbidden.contains($0) || $0.value < 0x20 }
    }
}
