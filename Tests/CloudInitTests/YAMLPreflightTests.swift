import Foundation
import Testing
import WispCore
import WispTestSupport
import Yams
@testable import CloudInit

/// Issue 16, failures 2-4: hostile YAML is measured by libyaml's event stream before Yams
/// composes it, and a big mapping converts in linear time. Each case starts from cloud-config
/// that cloud-init's own schema check accepts and adds one hostile change.
@Suite struct YAMLPreflightTests {
    static let valid = "#cloud-config\nhostname: web\npackages: [vim, curl]\n"

    @Test func baseDocumentIsValidForCloudInitAndWisp() throws {
        let dir = try TemporaryDirectory("preflight")
        let (accepted, output) = try UserDataValidatorTests.cloudInitAccepts(Self.valid, in: dir, name: "user-data")
        #expect(accepted, "\(output)")
        #expect(!UserDataValidator().validate(Array(Self.valid.utf8)).hasErrors)
        #expect(YAMLPreflight.excess(in: Self.valid) == nil)
    }

    /// Failure 2: 5,000 `[` opened and closed on one line; the old guard measured depth only
    /// at line ends, where it was back to zero.
    @Test func flowNestingOpenedAndClosedOnOneLineIsRefused() throws {
        let text = Self.valid + "x: " + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000) + "\n"
        let excess = try #require(YAMLPreflight.excess(in: text))
        #expect(excess.bound == .nesting(depth: 513))
        #expect(excess.line == 4)
        let issues = UserDataValidator().validate(Array(text.utf8))
        #expect(issues.contains { $0.severity == .error && $0.message.contains("nests 513 levels deep at line 4") && $0.message.contains("at most 512") })
        // The same in flow mappings, and in meta-data and network-config.
        let braces = "x: " + String(repeating: "{a: ", count: 5000) + "b" + String(repeating: "}", count: 5000) + "\n"
        #expect(YAMLPreflight.excess(in: braces)?.bound == .nesting(depth: 513))
        let metaIssues = SeedImageWriter.mappingIssues(Array(("instance-id: i-1\n" + braces).utf8), name: "meta-data", allowEmpty: false)
        #expect(metaIssues.contains { $0.message.contains("meta-data nests 513 levels deep") })
    }

    /// Failure 3: nested `? ` complex keys, and `- ` after `---`, which the old guard did not count.
    @Test func complexKeysAndSequencesAfterADocumentMarkerAreRefused() throws {
        let keys = Self.valid + String(repeating: "? ", count: 5000) + "x\n"
        #expect(YAMLPreflight.excess(in: keys)?.bound == .nesting(depth: 513))
        #expect(UserDataValidator().validate(Array(keys.utf8)).contains { $0.message.contains("levels deep") })
        let dashes = "---\n" + String(repeating: "- ", count: 5000) + "x\n"
        #expect(YAMLPreflight.excess(in: dashes)?.bound == .nesting(depth: 513))
        let mixed = "---\n" + String(repeating: "- ", count: 300) + String(repeating: "[", count: 300) + "x" + String(repeating: "]", count: 300) + "\n"
        #expect(YAMLPreflight.excess(in: mixed)?.bound == .nesting(depth: 513))
        // `wisp seed --user-data-extra` goes through the same check and says so.
        #expect {
            _ = try SeedGenerator.parseExtra("a: 1\n" + String(repeating: "? ", count: 5000) + "x\n")
        } throws: { error in
            (error as? WispError)?.kind == .invalidArgument && "\(error)".contains("nests 513 levels deep")
        }
        // The image's own cloud.cfg.d is left alone rather than parsed.
        #expect(CloudInitModuleList.merged("cloud_init_modules", from: [keys]) == nil)
        // Exactly the limit is accepted.
        let limit = "x: " + String(repeating: "[", count: 511) + String(repeating: "]", count: 511) + "\n"
        #expect(YAMLPreflight.excess(in: limit) == nil)
    }

    /// Failure 4: 120,000 top-level keys took over 10 s (a scan of every earlier key for
    /// each key). The limit on nodes is checked before composing, and is named.
    @Test func manyKeysConvertInLinearTimeAndTooManyAreRefusedByName() throws {
        var text = Self.valid
        text.reserveCapacity(1_700_000)
        for i in 0..<120_000 { text += "k\(i): \(i)\n" }
        text += "hostname: last\n"
        let start = Date()
        let root = try #require(try Yams.compose(yaml: text, Resolver.basic))
        var budget = ConfigNode.maximumNodes
        let config = try ConfigNode.from(root, budget: &budget)
        // Generous under a loaded 2-core CI machine; the quadratic scan took 10 s here.
        #expect(Date().timeIntervalSince(start) < 30)
        guard case .object(let pairs) = config.value else { Issue.record("not a mapping"); return }
        #expect(pairs.count == 120_002)
        // PyYAML keeps the last of duplicate keys, in the first key's place.
        #expect(pairs[0].key == "hostname")
        #expect(pairs[0].value.pythonRepr == "'last'")
        // 130,000 keys are 260,000 nodes: refused before composing, the bound named.
        for i in 120_000..<130_000 { text += "k\(i): \(i)\n" }
        let excess = try #require(YAMLPreflight.excess(in: text))
        #expect(excess.bound == .nodes(count: YAMLPreflight.maximumNodes + 1))
        let issues = UserDataValidator().validate(Array(text.utf8))
        #expect(issues.contains { $0.severity == .error && $0.message.contains("Wisp accepts at most 250000") })
    }

    /// The messages: a schema error about a 4 MB value quoted it whole.
    @Test func schemaErrorsQuoteValuesCutToAReadableLength() throws {
        let value = String(repeating: "x", count: 4 << 20)
        let text = Self.valid.replacingOccurrences(of: "packages: [vim, curl]", with: "packages: \(value)")
        let issues = UserDataValidator().validate(Array(text.utf8))
        let issue = try #require(issues.first { $0.path == "packages" && $0.severity == .error }, "\(issues.map(\.message))")
        #expect(issue.message.count < 400)
        #expect(issue.message.contains("... (\((4 << 20) + 2) characters in all) is not of type"), "\(issue.message)")
        // So are made-up keys, and past 50 of them the rest are counted, not listed.
        var many = Self.valid + String(repeating: "k", count: 1000) + ": 1\n"
        for i in 0..<200 { many += "made-up-\(i): 1\n" }
        let warnings = UserDataValidator().validate(Array(many.utf8)).filter { $0.severity == .warning }
        #expect(warnings.count == 51)
        #expect(warnings.allSatisfy { $0.message.count < 400 })
        #expect(warnings.last?.message == "151 more unknown top-level keys not listed")
    }
}
