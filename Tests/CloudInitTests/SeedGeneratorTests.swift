import Foundation
import Testing
import WispCore
import WispTestSupport
import Yams
@testable import CloudInit

/// Judges: `cloud-init schema` accepts the generated user-data, `cloud-init devel net-convert`
/// renders the generated network-config, and the YAML reads back to exactly the inputs.
@Suite struct SeedGeneratorTests {
    static func hostKey(in dir: TemporaryDirectory) throws -> SSHHostKey {
        let path = dir.file("host_ed25519")
        try ToolRunner.check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "host", "-f", path])
        let privateKey = try String(contentsOfFile: path, encoding: .utf8)
        let publicKey = try String(contentsOfFile: path + ".pub", encoding: .utf8)
        return SSHHostKey(type: .ed25519, privateKey: privateKey, publicKey: publicKey)
    }

    static let trickyCommands = [
        "echo 'hello world' > /tmp/hello",
        "yes", "0755", "a: b", "# not a comment", "multi\nline \"quoted\" \\ back", "ünïcödé ✓", "- dash", "{flow}",
    ]

    @Test func fullSeedIsAcceptedByCloudInitAndReadsBackExactly() throws {
        let dir = try TemporaryDirectory("seedgen")
        let key = try Self.hostKey(in: dir)
        let hash = try PasswordHasher.hash("pw", method: .yescrypt)
        let options = SeedOptions(
            user: "tester", sshAuthorizedKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAbCdEf tester@host", "ssh-rsa AAAAB3NzaC1yc2E second"],
            passwordHash: hash, hostname: "box1.example.test", instanceID: "iid-test-1",
            packages: ["curl", "vim"], runcmd: Self.trickyCommands, phoneHomeURL: "http://10.0.2.2:8080/phone/$INSTANCE_ID",
            network: StaticNetwork(address: "10.0.2.15/24", gateway: "10.0.2.2", dns: ["10.0.2.3"], macAddress: "52:54:00:12:34:56"),
            sshHostKeys: [key], extraUserDataYAML: "timezone: Europe/Paris\nwrite_files:\n  - path: /etc/motd\n    content: hi\n")
        let seed = try SeedGenerator.makeSeed(options)
        let userData = String(decoding: seed.userData, as: UTF8.self)
        #expect(userData.hasPrefix("#cloud-config\n"))

        let path = dir.file("user-data")
        try Data(seed.userData).write(to: URL(fileURLWithPath: path))
        let verdict = try ToolRunner.run("cloud-init", ["schema", "--config-file", path])
        #expect((verdict.stdoutText + verdict.stderrText).contains("Valid cloud-config"), "\(verdict.stdoutText)\(verdict.stderrText)")
        #expect(UserDataValidator().validate(seed.userData).isEmpty)

        let config = try #require(try Yams.load(yaml: userData) as? [String: Any])
        let users = try #require(config["users"] as? [[String: Any]])
        #expect(users.count == 1)
        #expect(users[0]["name"] as? String == "tester")
        #expect(users[0]["sudo"] as? String == "ALL=(ALL) NOPASSWD:ALL")
        #expect(users[0]["shell"] as? String == "/bin/bash")
        #expect(users[0]["lock_passwd"] as? Bool == false)
        #expect(users[0]["hashed_passwd"] as? String == hash)
        #expect(users[0]["ssh_authorized_keys"] as? [String] == options.sshAuthorizedKeys)
        #expect(config["ssh_pwauth"] as? Bool == true)
        #expect(config["hostname"] as? String == "box1")
        #expect(config["fqdn"] as? String == "box1.example.test")
        #expect(config["runcmd"] as? [String] == Self.trickyCommands)
        #expect(config["packages"] as? [String] == ["curl", "vim"])
        let keys = try #require(config["ssh_keys"] as? [String: String])
        #expect(keys["ed25519_private"] == key.privateKey)
        #expect(keys["ed25519_public"] == key.publicKey.trimmingCharacters(in: .whitespacesAndNewlines))
        let phone = try #require(config["phone_home"] as? [String: Any])
        #expect(phone["url"] as? String == "http://10.0.2.2:8080/phone/$INSTANCE_ID")
        // Only what Wisp reads: `all` would ask for RSA and ECDSA host keys the guest lacks.
        #expect(phone["post"] as? [String] == ["instance_id"])
        #expect(phone["tries"] as? Int == 10)
        #expect(config["timezone"] as? String == "Europe/Paris")
        #expect((config["write_files"] as? [[String: Any]])?.first?["path"] as? String == "/etc/motd")

        let meta = try #require(try Yams.load(yaml: String(decoding: seed.metaData, as: UTF8.self)) as? [String: Any])
        #expect(meta["instance-id"] as? String == "iid-test-1")
        #expect(meta["local-hostname"] as? String == "box1.example.test")

        // cloud-init's own renderer turns the network-config into systemd-networkd files.
        let network = dir.file("network-config")
        try Data(try #require(seed.networkConfig)).write(to: URL(fileURLWithPath: network))
        try ToolRunner.check("cloud-init", ["devel", "net-convert", "-p", network, "-k", "yaml", "-d", dir.file("out"),
                                            "-D", "debian", "-O", "networkd"])
        let rendered = try FileManager.default.subpathsOfDirectory(atPath: dir.file("out"))
            .filter { $0.hasSuffix(".network") }
            .map { try String(contentsOfFile: dir.file("out") + "/" + $0, encoding: .utf8) }.joined()
        for line in ["MACAddress=52:54:00:12:34:56", "Name=eth0", "Address=10.0.2.15/24", "Gateway=10.0.2.2", "DNS=10.0.2.3"] {
            #expect(rendered.contains(line), "networkd rendering lacks \(line):\n\(rendered)")
        }
    }

    @Test func defaultsGiveALockedPasswordAndFreshInstanceIDs() throws {
        let a = try SeedGenerator.makeSeed(SeedOptions(sshAuthorizedKeys: ["ssh-ed25519 AAAAC3Nza key"]))
        let b = try SeedGenerator.makeSeed(SeedOptions(sshAuthorizedKeys: ["ssh-ed25519 AAAAC3Nza key"]))
        #expect(a.metaData != b.metaData)
        let meta = String(decoding: a.metaData, as: UTF8.self)
        #expect(meta.hasPrefix("instance-id: \"iid-") && !meta.contains("local-hostname"))
        let config = try #require(try Yams.load(yaml: String(decoding: a.userData, as: UTF8.self)) as? [String: Any])
        #expect(config["ssh_pwauth"] as? Bool == false)
        let user = try #require((config["users"] as? [[String: Any]])?.first)
        #expect(user["lock_passwd"] as? Bool == true)
        #expect(user["name"] as? String == (try SeedGenerator.defaultUser()))
        #expect(a.networkConfig == nil)
        #expect(config["phone_home"] == nil && config["packages"] == nil)
    }

    @Test func globNetworkConfigRendersWithNetplan() throws {
        let dir = try TemporaryDirectory("seedgen")
        let text = try SeedGenerator.networkConfig(StaticNetwork(address: "fd00::10/64", gateway: "fd00::1", dns: ["fd00::3"]))
        try Data(text.utf8).write(to: URL(fileURLWithPath: dir.file("nc")))
        try ToolRunner.check("cloud-init", ["devel", "net-convert", "-p", dir.file("nc"), "-k", "yaml", "-d", dir.file("out"),
                                            "-D", "debian", "-O", "netplan"])
        let rendered = try String(contentsOfFile: dir.file("out") + "/etc/netplan/50-cloud-init.yaml", encoding: .utf8)
        #expect(rendered.contains("fd00::10/64") && rendered.contains("gateway6: fd00::1") && rendered.contains("name: e*"), "\(rendered)")
    }

    @Test func badOptionsAreRefusedWithClearErrors() {
        let key = ["ssh-ed25519 AAAAC3Nza key"]
        let cases: [(SeedOptions, String)] = [
            (SeedOptions(user: "Bad User", sshAuthorizedKeys: key), "user name"),
            (SeedOptions(user: "ok", sshAuthorizedKeys: key, hostname: "-bad-.example"), "hostname"),
            (SeedOptions(user: "ok", sshAuthorizedKeys: key, hostname: String(repeating: "a", count: 64)), "hostname"),
            (SeedOptions(user: "ok", sshAuthorizedKeys: ["not a key"]), "OpenSSH public key"),
            (SeedOptions(user: "ok", sshAuthorizedKeys: ["ssh-ed25519 AAAA\nssh-rsa AAAA"]), "OpenSSH public key"),
            (SeedOptions(user: "ok", passwordHash: "hunter2"), "not a crypt(3) hash"),
            (SeedOptions(user: "ok", instanceID: "iid with space"), "instance id"),
            (SeedOptions(user: "ok", packages: ["two words"]), "package name"),
            (SeedOptions(user: "ok", phoneHomeURL: "ftp://x"), "phone-home URL"),
            (SeedOptions(user: "ok", network: StaticNetwork(address: "10.0.0.1/33")), "ADDRESS/PREFIX"),
            (SeedOptions(user: "ok", network: StaticNetwork(address: "10.0.0.1/24", gateway: "fd00::1")), "gateway"),
            (SeedOptions(user: "ok", network: StaticNetwork(address: "10.0.0.1/24", macAddress: "zz")), "MAC address"),
            (SeedOptions(user: "ok", extraUserDataYAML: "users: []"), "already generate"),
            (SeedOptions(user: "ok", extraUserDataYAML: "- a list"), "mapping"),
            (SeedOptions(user: "ok", extraUserDataYAML: "runcmd: not-a-list"), "not valid cloud-config"),
            (SeedOptions(user: "ok", extraUserDataYAML: "a: [unclosed"), "not valid YAML"),
        ]
        for (options, message) in cases {
            #expect {
                _ = try SeedGenerator.makeSeed(options)
            } throws: { error in
                "\(error)".contains(message)
            }
        }
    }
}
