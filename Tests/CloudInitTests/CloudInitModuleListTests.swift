import Foundation
import Testing
import WispCore
import WispTestSupport
import Yams
@testable import CloudInit

/// Judge: cloud-init's own config reader (`util.read_conf_with_confd`, what the guest runs)
/// merges cloud.cfg and cloud.cfg.d/*.cfg to the same init-stage list we read.
@Suite struct CloudInitModuleListTests {
    static let debianConfig = """
        users:
         - default
        cloud_init_modules:
         - migrator
         - seed_random
         - [bootcmd, always]
         - write-files
         - users-groups
         - ssh
        cloud_final_modules:
         - scripts-user
         - phone-home
        """

    /// What cloud-init itself makes of the files, as JSON.
    static func cloudInitsOwnList(_ files: [(String, String)]) throws -> [[String]]? {
        let dir = try TemporaryDirectory("modlist")
        try FileManager.default.createDirectory(atPath: dir.file("cloud.cfg.d"), withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: dir.file(name), atomically: true, encoding: .utf8) }
        let script = """
            import json, sys
            from cloudinit import util
            mods = util.read_conf_with_confd(sys.argv[1]).get("cloud_init_modules")
            print(json.dumps(None if mods is None else [[m] if isinstance(m, str) else [str(x) for x in m] for m in mods]))
            """
        let result = try ToolRunner.run("/usr/bin/python3", ["-c", script, dir.file("cloud.cfg")])
        #expect(result.status == 0, "\(result.stderrText)")
        let parsed = try JSONSerialization.jsonObject(with: Data(result.stdoutText.utf8), options: .fragmentsAllowed)
        return parsed as? [[String]]
    }

    @Test func readsTheListAsCloudInitMergesIt() throws {
        let cases: [[(String, String)]] = [
            [("cloud.cfg", Self.debianConfig)],
            // A later cloud.cfg.d file replaces the list; an unrelated one leaves it alone.
            [("cloud.cfg", Self.debianConfig),
             ("cloud.cfg.d/10-local.cfg", "cloud_init_modules: [migrator, ssh]\n"),
             ("cloud.cfg.d/90-other.cfg", "datasource_list: [NoCloud, None]\n")],
            [("cloud.cfg", Self.debianConfig),
             ("cloud.cfg.d/50-b.cfg", "cloud_init_modules:\n - users-groups\n"),
             ("cloud.cfg.d/20-a.cfg", "cloud_init_modules:\n - ssh\n - [growpart, once-per-instance]\n")],
        ]
        for files in cases {
            let ours = CloudInitModuleList.merged("cloud_init_modules", from: files.sorted { $0.0 < $1.0 }.map(\.1))
            let theirs = try Self.cloudInitsOwnList(files)
            #expect(ours?.entries == theirs, "\(files.map(\.0))")
        }
    }

    @Test func unreadableOrOddConfigsGiveNoList() {
        // No list anywhere, a list that is not a sequence, nested arguments, bad YAML.
        #expect(CloudInitModuleList.merged("cloud_init_modules", from: ["users: [default]\n", ""]) == nil)
        #expect(CloudInitModuleList.merged("cloud_init_modules", from: ["cloud_init_modules: ssh\n"]) == nil)
        #expect(CloudInitModuleList.merged("cloud_init_modules", from: ["cloud_init_modules:\n - [ssh, always, [a, b]]\n"]) == nil)
        #expect(CloudInitModuleList.merged("cloud_init_modules", from: [Self.debianConfig, "cloud_init_modules: [ssh\n"]) == nil)
        #expect(CloudInitModuleList.merged("cloud_init_modules", from: ["cloud_init_modules:\n - \"ssh; rm -rf /\"\n"]) == nil)
        // Hostile nesting is refused before Yams recurses into it (it would exhaust the stack).
        #expect(CloudInitModuleList.merged("cloud_init_modules", from: [Self.debianConfig, String(repeating: "[", count: 100_000)]) == nil)
        // Bad YAML that does not mention the key cannot change it: cloud-init's list stands.
        #expect(CloudInitModuleList.merged("cloud_init_modules", from: [Self.debianConfig, "foo: [\n"])?.entries.count == 6)
    }

    @Test func phoneHomeJoinsOnceWhateverItsSpelling() {
        let list = CloudInitModuleList(entries: [["migrator"], ["ssh"]])
        #expect(list.appending("phone_home").entries.last == ["phone_home"])
        let spelt = CloudInitModuleList(entries: [["phone-home"], ["ssh"]])
        #expect(spelt.appending("phone_home") == spelt)
        #expect(CloudInitModuleList(entries: [["cc_phone_home"]]).contains(module: "phone-home"))
    }

    @Test func seedWithInitStagePhoneHomeIsValidCloudConfig() throws {
        let dir = try TemporaryDirectory("modseed")
        let list = try #require(CloudInitModuleList.merged("cloud_init_modules", from: [Self.debianConfig]))
        let options = SeedOptions(user: "tester", sshAuthorizedKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAbCdEf tester@host"],
                                  hostname: "box", phoneHomeURL: "http://10.0.2.2:8080/phone-home", initStageModules: list)
        let seed = try SeedGenerator.makeSeed(options)
        let path = dir.file("user-data")
        try Data(seed.userData).write(to: URL(fileURLWithPath: path))
        let verdict = try ToolRunner.run("cloud-init", ["schema", "--config-file", path])
        #expect((verdict.stdoutText + verdict.stderrText).contains("Valid cloud-config"), "\(verdict.stdoutText)\(verdict.stderrText)")
        #expect(UserDataValidator().validate(seed.userData).isEmpty)
        let config = try #require(try Yams.load(yaml: String(decoding: seed.userData, as: UTF8.self)) as? [String: Any])
        let modules = try #require(config["cloud_init_modules"] as? [Any])
        #expect(modules.count == 8)
        #expect(modules.suffix(2).map { $0 as? String } == ["set_passwords", "phone_home"])
        #expect(modules[2] as? [String] == ["bootcmd", "always"])
        #expect(config["manage_etc_hosts"] as? String == "localhost")

        // The user's own manage_etc_hosts wins over ours (and is not a conflict).
        var own = options
        own.extraUserDataYAML = "manage_etc_hosts: true\n"
        let ownConfig = try #require(try Yams.load(yaml: String(decoding: try SeedGenerator.makeSeed(own).userData, as: UTF8.self)) as? [String: Any])
        #expect(ownConfig["manage_etc_hosts"] as? Bool == true)

        // Without a phone_home URL there is nothing to move: the guest's lists stay its own.
        var plain = options
        plain.phoneHomeURL = nil
        let plainConfig = try #require(try Yams.load(yaml: String(decoding: try SeedGenerator.makeSeed(plain).userData, as: UTF8.self)) as? [String: Any])
        #expect(plainConfig["cloud_init_modules"] == nil)
    }
}
