import Foundation
import Testing
import WispCore
import WispTestSupport

/// `wisp seed` end to end: the built binary, judged by isoinfo, mtools and exit codes.
@Suite struct SeedCommandTests {
    static func wisp() throws -> String { try WispBinary.path() }

    static func write(_ text: String, _ path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    @Test func packsGivenFilesLikeCloudLocalds() throws {
        let dir = try TemporaryDirectory("seedcli")
        try Self.write("#cloud-config\nruncmd: [ls]\n", dir.file("user-data"))
        try Self.write("instance-id: iid-cli\n", dir.file("meta-data"))
        try Self.write("version: 2\nethernets: {eth0: {dhcp4: true}}\n", dir.file("net"))
        let out = dir.file("seed.iso")
        try ToolRunner.check(try Self.wisp(), ["seed", "-N", dir.file("net"), out, dir.file("user-data"), dir.file("meta-data")])
        #expect(try ToolRunner.check("isoinfo", ["-R", "-x", "/meta-data", "-i", out]).stdoutText == "instance-id: iid-cli\n")
        #expect(try ToolRunner.check("isoinfo", ["-R", "-x", "/network-config", "-i", out]).stdoutText.hasPrefix("version: 2"))

        // Without META-DATA: a fresh instance id and the -H hostname, as cloud-localds does.
        let vfat = dir.file("seed.img")
        let report = try ToolRunner.check(try Self.wisp(), ["seed", "-f", "vfat", "-H", "clihost", "--json", vfat, dir.file("user-data")])
        #expect(report.stdoutText.contains("\"format\" : \"vfat\""))
        let meta = try ToolRunner.check("mtype", ["-i", vfat, "::/meta-data"]).stdoutText
        #expect(meta.contains("instance-id: \"iid-") && meta.contains("local-hostname: \"clihost\""))
    }

    @Test func generatesFromFlagsAndNeverStoresTheClearPassword() throws {
        let dir = try TemporaryDirectory("seedcli")
        let home = dir.file("home")
        try FileManager.default.createDirectory(atPath: home + "/.ssh", withIntermediateDirectories: true)
        try Self.write("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHomeKey me@host\n", home + "/.ssh/id_ed25519.pub")
        let out = dir.file("seed.iso")
        let secret = "Tr0ub4dor&3-unique-clear-text"
        try ToolRunner.check(try Self.wisp(), ["seed", out, "--user", "clitest", "--password-stdin", "--hostname", "web1",
                                               "--packages", "curl,jq", "--run", "touch /ran", "--phone-home", "http://10.0.2.2:9/done",
                                               "--static-ip", "10.0.2.15/24", "--gateway", "10.0.2.2", "--dns", "10.0.2.3"],
                             input: Data((secret + "\n").utf8), environment: ["HOME": home])
        let userData = try ToolRunner.check("isoinfo", ["-R", "-x", "/user-data", "-i", out]).stdoutText
        #expect(userData.contains("name: \"clitest\"") && userData.contains("hashed_passwd: \"$y$"))
        #expect(userData.contains("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHomeKey me@host"))
        #expect(userData.contains("ssh_pwauth: true") && userData.contains("url: \"http://10.0.2.2:9/done\""))
        let image = try Data(contentsOf: URL(fileURLWithPath: out))
        #expect(image.range(of: Data(secret.utf8)) == nil, "the clear-text password is in the image")
        #expect(try ToolRunner.check("isoinfo", ["-R", "-x", "/network-config", "-i", out]).stdoutText.contains("10.0.2.15/24"))
    }

    @Test func validateModeReportsAndSetsTheExitCode() throws {
        let dir = try TemporaryDirectory("seedcli")
        try Self.write("#cloud-config\nruncmd: oops\npackagess: [x]\n", dir.file("bad"))
        try Self.write("#cloud-config\nruncmd: [ls]\n", dir.file("good"))
        let bad = try ToolRunner.run(try Self.wisp(), ["seed", "--validate", dir.file("bad")])
        #expect(bad.status == 1)
        #expect(bad.stdoutText.contains("error: runcmd: 'oops' is not of type 'array'"))
        #expect(bad.stdoutText.contains("did you mean 'packages'?"))
        let good = try ToolRunner.run(try Self.wisp(), ["seed", "--validate", dir.file("good"), "--json"])
        #expect(good.status == 0)
        #expect(good.stdoutText.contains("\"valid\" : true"))
        // Invalid user-data is never packed.
        let refused = try ToolRunner.run(try Self.wisp(), ["seed", dir.file("x.iso"), dir.file("bad")])
        #expect(refused.status != 0 && !FileManager.default.fileExists(atPath: dir.file("x.iso")))
        // Conflicting flags are usage errors.
        let conflict = try ToolRunner.run(try Self.wisp(), ["seed", dir.file("y.iso"), dir.file("good"), "--user", "x"])
        #expect(conflict.status != 0 && conflict.stderrText.contains("only apply when Wisp generates user-data"))
    }
}
