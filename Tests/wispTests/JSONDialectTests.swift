import Foundation
import Testing
import WispCore
import WispTestSupport

/// Every `--json` speaks one dialect (docs/JSON.md): each command's output is validated
/// against its definition in docs/json/wisp.schema.json by Python's jsonschema, and every
/// key is kebab-case. Outputs that need a booted guest (info's uptime) are checked the same
/// way in BootTests.
@Suite struct JSONDialectTests {
    static func expectValid(_ json: String, _ definition: String, _ command: [String]) throws {
        let problems = try JSONSchemaJudge.problems(json, definition: definition)
        #expect(problems.isEmpty, "\(command.joined(separator: " ")) against \(definition):\n\(problems)")
        // One spelling: no escaped slashes.
        #expect(!json.contains("\\/"), "\(command): escaped slash")
    }

    @Test func everyImageCommandMatchesTheSchema() throws {
        let image = try TestImage.path()
        let dir = try TemporaryDirectory("wisp-json")
        let env = EverydayCommandTests.environment(dir)
        let key = dir.file("k")
        try ToolRunner.check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key])
        try Data("#cloud-config\nusers: []\n".utf8).write(to: URL(fileURLWithPath: dir.file("user-data")))
        let cases: [([String], String)] = [
            (["image", "info", "--json", image], "image-info"),
            (["image", "check", "--json", image], "image-check"),
            (["inspect", "--json", image], "inspect"),
            (["kernel", "extract", "--list", "--json", image], "kernel-list"),
            (["kernel", "extract", "--json", image, "-o", dir.file("kernel")], "kernel-extract"),
            (["fs", "ls", "--json", image, "/etc"], "fs-ls"),
            (["seed", "--json", "--ssh-key", key + ".pub", dir.file("seed.iso")], "seed"),
            (["seed", "--validate", dir.file("user-data"), "--json"], "seed-validate"),
            (["config", "show", "--json"], "config-show"),
            (["list", "--json"], "list"),
        ]
        for (command, definition) in cases {
            let result = try WispBinary.run(command, environment: env)
            #expect(result.status == 0 || command.contains("--validate"), "\(command): \(result.stderrText)")
            try Self.expectValid(result.stdoutText, definition, command)
        }
    }

    @Test func instanceCommandsMatchTheSchema() throws {
        let box = try PortCopyMountCommandTests.Sandbox()
        try box.check(["port", "add", "st", "18080:80"])
        for (command, definition) in [(["list", "--json"], "list"), (["info", "st", "--json"], "instance"), (["port", "ls", "st", "--json"], "port-list")] {
            let result = try box.check(command)
            try Self.expectValid(result.stdoutText, definition, command)
        }
        let info = try #require(try JSONSerialization.jsonObject(with: box.check(["info", "st", "--json"]).stdout) as? [String: Any])
        #expect(info["memory"] as? Int == 512 << 20)
        #expect((info["ports"] as? [[String: Any]])?.first?["host-port"] as? Int == 18080)
        #expect(((info["disks"] as? [[String: Any]])?.first?["virtual-size"] as? Int ?? 0) > 0)
    }

    /// The judge itself refuses what it should: a camelCase key, a size as a string.
    @Test func theJudgeRefusesOtherDialects() throws {
        #expect(try JSONSchemaJudge.problems(#"[{"hostAddress": "127.0.0.1", "host-port": 1, "guest-port": 2, "protocol": "tcp"}]"#, definition: "port-list").contains("hostAddress"))
        #expect(try !JSONSchemaJudge.problems(#"{"reference": "r", "digest": "sha256:00", "config": "x", "platform": "p", "layers": 1, "size": "2 GiB"}"#, definition: "image-pull").isEmpty)
    }
}
