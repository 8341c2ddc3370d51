import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import CloudInit

/// The judge is Debian's cloud-init 22.4: `cloud-init schema --config-file` must reach the
/// same verdict as UserDataValidator on every case of the corpus, and both must match the
/// verdict the case declares.
@Suite struct UserDataValidatorTests {
    static func cloudInitAccepts(_ text: String, in dir: TemporaryDirectory, name: String) throws -> (Bool, String) {
        let path = dir.file(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        let result = try ToolRunner.run("cloud-init", ["schema", "--config-file", path])
        let output = result.stdoutText + result.stderrText
        return (output.contains("Valid cloud-config"), output)
    }

    @Test(arguments: UserDataCorpus.valid + UserDataCorpus.invalid)
    func agreesWithCloudInitSchema(_ example: UserDataCase) throws {
        let dir = try TemporaryDirectory("userdata")
        let (cloudInitValid, cloudInitOutput) = try Self.cloudInitAccepts(example.text, in: dir, name: "user-data")
        let issues = UserDataValidator().validate(Array(example.text.utf8))
        let ours = !issues.hasErrors
        #expect(cloudInitValid == example.valid, "cloud-init schema says \(cloudInitValid ? "valid" : "invalid"): \(cloudInitOutput)")
        #expect(ours == example.valid, "wisp says \(ours ? "valid" : "invalid"): \(issues)")
        if let expected = example.expectedMessage {
            #expect(issues.contains { $0.description.contains(expected) }, "no issue mentions \(expected): \(issues)")
        }
    }

    @Test func misspeltTopLevelKeyIsAWarningWithASuggestion() {
        let issues = UserDataValidator().validate(Array("#cloud-config\npackagess: [vim]\nruncmdd: [ls]\n".utf8))
        #expect(!issues.hasErrors)
        #expect(issues.contains { $0.severity == .warning && $0.message.contains("did you mean 'packages'?") && $0.line == 2 })
        #expect(issues.contains { $0.severity == .warning && $0.message.contains("did you mean 'runcmd'?") })
    }

    @Test func syntaxErrorsCarryLineAndColumn() {
        let issues = UserDataValidator().validate(Array("#cloud-config\nusers:\n  - name: a\n   shell: x\n".utf8))
        let syntax = issues.first { $0.path.hasPrefix("format-l") }
        #expect(syntax?.line == 4, "\(issues)")
        #expect(syntax?.column != nil)
        #expect(syntax?.message.contains("is not valid yaml") == true)
    }

    @Test func scriptsIncludesAndTemplatesPassThrough() {
        let validator = UserDataValidator()
        #expect(validator.validate(Array("#!/bin/sh\necho hi\n".utf8)).isEmpty)
        #expect(validator.kind(of: Array("#!/bin/sh\n".utf8)) == .script)
        #expect(validator.validate(Array("#include\nhttps://example.com/a.yaml\n".utf8)).isEmpty)
        #expect(validator.validate(Array("#cloud-boothook\n#!/bin/sh\necho x\n".utf8)).isEmpty)
        #expect(validator.validate(Array("## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\n".utf8)).isEmpty)
        let badTemplate = validator.validate(Array("## template: jinja\nhostname: x\n".utf8))
        #expect(badTemplate.hasErrors)
    }

    /// Multipart built by cloud-init's own make-mime; each part is judged on its own.
    @Test func multipartPartsAreValidatedIndividually() throws {
        let dir = try TemporaryDirectory("userdata")
        try Data("#cloud-config\nruncmd: [ls]\n".utf8).write(to: URL(fileURLWithPath: dir.file("good.yaml")))
        try Data("#cloud-config\nruncmd: not-a-list\n".utf8).write(to: URL(fileURLWithPath: dir.file("bad.yaml")))
        try Data("#!/bin/sh\necho hi\n".utf8).write(to: URL(fileURLWithPath: dir.file("script.sh")))
        let good = try ToolRunner.check("cloud-init", ["devel", "make-mime", "-a", dir.file("good.yaml") + ":cloud-config",
                                                      "-a", dir.file("script.sh") + ":x-shellscript"]).stdout
        let goodIssues = UserDataValidator().validate(Array(good))
        #expect(UserDataValidator().kind(of: Array(good)) == .multipart)
        #expect(!goodIssues.hasErrors, "\(goodIssues)")
        let bad = try ToolRunner.check("cloud-init", ["devel", "make-mime", "-a", dir.file("script.sh") + ":x-shellscript",
                                                     "-a", dir.file("bad.yaml") + ":cloud-config"]).stdout
        let badIssues = UserDataValidator().validate(Array(bad))
        #expect(badIssues.contains { $0.severity == .error && $0.part == "part 2 (text/cloud-config)" && $0.message.contains("is not of type 'array'") },
                "\(badIssues)")
    }

    @Test func gzipUserDataIsUnpackedAndChecked() throws {
        let dir = try TemporaryDirectory("userdata")
        let path = dir.file("user-data")
        try Data("#cloud-config\nruncmd: oops\n".utf8).write(to: URL(fileURLWithPath: path))
        try ToolRunner.check("gzip", ["-n", path])
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path + ".gz")))
        #expect(UserDataValidator().kind(of: bytes) == .gzip)
        #expect(UserDataValidator().validate(bytes).contains { $0.message.contains("'oops' is not of type 'array'") })
    }

    @Test func hostileUserDataGetsErrorsNotCrashes() {
        let validator = UserDataValidator()
        // Binary noise.
        var generator = SystemRandomNumberGenerator()
        let noise = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) } + [0xFF, 0xFE]
        #expect(validator.validate(noise).hasErrors)
        // Cloud-config with invalid UTF-8 in the middle.
        let broken = Array("#cloud-config\nhostname: ab".utf8) + [0xC3, 0x28] + Array("\n".utf8)
        #expect(validator.validate(broken).contains { $0.message.contains("not valid UTF-8") })
        // Too large.
        let huge = Array("#cloud-config\n".utf8) + [UInt8](repeating: UInt8(ascii: "#"), count: UserDataValidator.maximumSize)
        #expect(validator.validate(huge).contains { $0.message.contains("at most") })
        // Deep nesting that would recurse the composer off the stack.
        let deep = "#cloud-config\nx: " + String(repeating: "[", count: 100_000) + "\n"
        #expect(validator.validate(Array(deep.utf8)).contains { $0.message.contains("levels deep") })
        let dashes = "#cloud-config\nx:\n" + String(repeating: "- ", count: 50_000) + "a\n"
        #expect(validator.validate(Array(dashes.utf8)).hasErrors)
        // Alias expansion ("billion laughs") stays bounded.
        var laughs = "#cloud-config\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1..<9 {
            laughs += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        let start = Date()
        #expect(validator.validate(Array(laughs.utf8)).contains { $0.message.contains("YAML nodes") })
        #expect(Date().timeIntervalSince(start) < 20)
        // Legitimate text that merely looks deep is not refused.
        let rule = "#cloud-config\nwrite_files:\n  - path: /etc/banner\n    content: |\n      " + String(repeating: "-", count: 2000) + "\n"
        #expect(!validator.validate(Array(rule.utf8)).hasErrors)
        // Empty input.
        #expect(validator.validate([]).hasErrors)
    }
}
