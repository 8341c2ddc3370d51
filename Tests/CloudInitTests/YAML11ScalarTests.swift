import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import CloudInit

/// Judge: PyYAML's safe_load (what cloud-init uses) types each plain scalar the same way.
@Suite struct YAML11ScalarTests {
    static let scalars = [
        "", "~", "null", "Null", "NULL", "nULL", "yes", "No", "ON", "off", "true", "False", "y", "n", "nO",
        "0", "12", "-7", "+3", "1_000", "0755", "0o17", "0b101", "0x1F", "0xfg", "08", "1:30", "190:20:30", "1:60",
        "1.5", "-2.", ".5", "1.0e+3", "1e3", "1.e-2", "1_0.5", "1:30.5", ".inf", "-.Inf", ".NaN", "1.2.3",
        "2023-01-01", "2023-1-1", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2001-12-15T02:59:43.1Z",
        "2023-01-01x", "12:30", "version", "ALL=(ALL) NOPASSWD:ALL", "+", ".", "0.", "00", "-0",
    ]

    @Test func typesMatchPyYAML() throws {
        let script = """
        import sys, yaml
        for line in sys.stdin.read().split("\\n")[:-1]:
            value = yaml.safe_load("v: " + line)["v"]
            print(type(value).__name__)
        """
        let input = Data((Self.scalars.joined(separator: "\n") + "\n").utf8)
        let output = try ToolRunner.check("/usr/bin/python3", ["-c", script], input: input).stdoutText
        let theirs = output.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        #expect(theirs.count == Self.scalars.count)
        for (scalar, type) in zip(Self.scalars, theirs) {
            let ours: String
            switch YAML11Scalar.resolve(scalar) {
            case .null: ours = "NoneType"
            case .bool: ours = "bool"
            case .int: ours = "int"
            case .float: ours = "float"
            case .string: ours = "str"
            case .date: ours = type == "datetime" ? "datetime" : "date"
            case .array, .object: ours = "container"
            }
            #expect(ours == type, "\"\(scalar)\": PyYAML says \(type), Wisp says \(ours)")
        }
    }

    @Test func valuesMatchForNumbers() {
        guard case .int(let octal) = YAML11Scalar.resolve("0755") else { Issue.record("0755 is not an int"); return }
        #expect(octal == 493)
        guard case .int(let sexagesimal) = YAML11Scalar.resolve("190:20:30") else { Issue.record("base 60"); return }
        #expect(sexagesimal == 685_230)
        guard case .int(let hex) = YAML11Scalar.resolve("0x1F") else { Issue.record("hex"); return }
        #expect(hex == 31)
    }
}
