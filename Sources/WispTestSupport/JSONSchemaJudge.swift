import Foundation
import WispCore

/// The judge of docs/json/wisp.schema.json: Python's jsonschema (Debian's
/// python3-jsonschema, installed by scripts/setup) validates a command's `--json` output
/// against one of the schema's `$defs`, and every key in it is checked to be kebab-case.
public enum JSONSchemaJudge {
    /// The repository's schema file, found from this source file's location.
    public static var schemaPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/json/wisp.schema.json").path
    }

    static let script = """
    import json, re, sys
    import jsonschema
    schema = json.load(open(sys.argv[1]))
    definition = sys.argv[2]
    document = json.load(sys.stdin)
    root = dict(schema)
    root["$ref"] = "#/$defs/" + definition
    validator = jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    for error in errors[:5]:
        print("/".join(str(p) for p in error.path) + ": " + error.message[:300])
    bad = []
    def walk(value, path):
        if isinstance(value, dict):
            for key, item in value.items():
                if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", key):
                    bad.append(path + "/" + key)
                walk(item, path + "/" + key)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, path + "/" + str(index))
    walk(document, "")
    for path in bad[:5]:
        print(path + ": key is not kebab-case")
    sys.exit(1 if errors or bad else 0)
    """

    /// Problems found (empty when `json` is valid for `definition`).
    public static func problems(_ json: String, definition: String) throws -> String {
        let result = try ToolRunner.run("python3", ["-c", script, schemaPath, definition], input: Data(json.utf8))
        if result.status == 0 { return "" }
        return result.stdoutText + result.stderrText
    }
}
