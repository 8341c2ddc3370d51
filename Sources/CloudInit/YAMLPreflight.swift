// libyaml, the parser inside Yams: its event parser keeps explicit stacks instead of
// recursing, so it can measure a document Yams' recursive composer could not survive.
import CYaml
import Yams
import WispCore

/// Measures YAML before it is composed into a tree: the deepest nesting of any construct
/// (flow `[`/`{`, block `- `, `? ` complex keys, mappings, after `---` or not) and the number
/// of nodes, from libyaml's own event stream, so what is measured is exactly what Yams would
/// build. Yams composes recursively, one stack frame per level, and a hostile document 5,000
/// levels deep overflowed the stack (issue 16, failures 2 and 3); a line-based guess at the
/// depth missed flow brackets opened and closed on one line and `? ` keys.
public enum YAMLPreflight {
    /// A user's settings file (config.yaml, images.d/*.yaml) composed after the preflight,
    /// each failure an `.invalidArgument` naming `file`: nil for an empty document.
    public static func composeFile(_ text: String, file: String) throws -> Node? {
        if let excess = excess(in: text) {
            throw WispError(.invalidArgument, "\(file): \(excess.sentence)")
        }
        do {
            return try Yams.compose(yaml: text)
        } catch {
            throw WispError(.invalidArgument, "\(file): not valid YAML (\(String(describing: error).prefix(200)))")
        }
    }

    /// Deeper than this is refused: cloud-config nests a handful of levels; Yams' composer
    /// uses several frames per level, and this keeps it far from any thread's stack limit.
    public static let maximumNesting = 512
    /// More nodes than this (scalars, sequences, mappings, aliases) are refused before the
    /// tree is built. Alias expansion is bounded again when the tree is converted.
    public static let maximumNodes = 250_000

    /// What made a document too big to compose, and where (1-based line and column).
    public struct Excess: Sendable, Equatable {
        public enum Bound: Sendable, Equatable {
            case nesting(depth: Int)
            case nodes(count: Int)
        }
        public var bound: Bound
        public var line: Int
        public var column: Int

        /// "nests 513 levels deep at line 1, column 513; Wisp accepts at most 512"
        public var sentence: String {
            switch bound {
            case .nesting(let depth):
                return "nests \(depth) levels deep at line \(line), column \(column); Wisp accepts at most \(YAMLPreflight.maximumNesting) levels of YAML nesting"
            case .nodes(let count):
                return "holds more than \(count - 1) YAML nodes (line \(line), column \(column)); Wisp accepts at most \(YAMLPreflight.maximumNodes)"
            }
        }
    }

    /// nil when the document is within both bounds, or when it is not YAML libyaml can parse
    /// (the composer then reports the syntax error, having gone no deeper than this did).
    public static func excess(in text: String, maximumNesting: Int = maximumNesting,
                              maximumNodes: Int = maximumNodes) -> Excess? {
        var bytes = Array(text.utf8)
        if bytes.isEmpty { return nil }
        return bytes.withUnsafeMutableBufferPointer { buffer -> Excess? in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else { return nil }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var depth = 0
            var nodes = 0
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                let mark = (line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1)
                switch event.type {
                case YAML_STREAM_END_EVENT, YAML_NO_EVENT:
                    return nil
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    depth += 1
                    nodes += 1
                    if depth > maximumNesting {
                        return Excess(bound: .nesting(depth: depth), line: mark.line, column: mark.column)
                    }
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    depth -= 1
                case YAML_SCALAR_EVENT, YAML_ALIAS_EVENT:
                    nodes += 1
                default:
                    break
                }
                if nodes > maximumNodes {
                    return Excess(bound: .nodes(count: nodes), line: mark.line, column: mark.column)
                }
            }
        }
    }
}
