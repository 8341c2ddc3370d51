import Foundation
import Testing
import WispCore
import WispTestSupport

/// A bootc-style image without cloud-init (`BootcImageFixture`) boots from an oci-archive
/// and from a real registry on 127.0.0.1 under TCG: the image's own kernel with its kargs.d
/// argument, root's key and the host key delivered as systemd credentials (nothing secret
/// on the kernel command line), `wisp ssh` checking the host key strictly; the second run
/// of the same manifest digest reuses the cached disk.
@Suite(.serialized) struct ContainerBootTests {
    @Test(.timeLimit(.minutes(30))) func bootcImageFromArchiveThenRegistry() throws {
        let box = try BootTests.Sandbox()
        defer { box.cleanUp() }
        let fixture = try BootcImageFixture.get(wisp: box.wisp)
        let reference = "oci-archive:\(fixture.archive)"

        var clock = Date()
        let run = try box.check(["run", "--name", "bootc", "--accel", BootTests.accel, "--memory", "1536M", "--timeout", "900",
                                 "--karg", "wisp.e2e.user=1", reference])
        let firstRun = -clock.timeIntervalSinceNow
        #expect(run.stdoutText == "bootc\n")
        #expect(run.stderrText.contains("building a disk from \(reference)"), "\(run.stderrText)")
        #expect(run.stderrText.contains("systemd credentials"), "\(run.stderrText)")

        // The kernel command line: root= by UUID, the image's kargs.d argument, and no key.
        let cmdline = try box.check(["ssh", "bootc", "--", "cat", "/proc/cmdline"]).stdoutText
        #expect(cmdline.contains(BootcImageFixture.kargsMarker), "\(cmdline)")
        #expect(cmdline.contains("root=UUID="), "\(cmdline)")
        // root= first, then rw, the kargs.d argument, Wisp's console and hostname, the user's --karg last.
        let words = cmdline.split(separator: " ").map(String.init).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(words.first?.hasPrefix("root=UUID=") == true && words.last == "wisp.e2e.user=1", "\(cmdline)")
        if let kargs = words.firstIndex(of: BootcImageFixture.kargsMarker), let rw = words.firstIndex(of: "rw"),
           let console = words.firstIndex(where: { $0.hasPrefix("console=ttyS0") }) {
            #expect(rw < kargs && kargs < console, "\(cmdline)")
        } else {
            Issue.record("rw, the kargs.d argument or the console is missing: \(cmdline)")
        }
        let publicKey = try String(contentsOfFile: box.dir.file("data") + "/wisp/instances/bootc/id_ed25519.pub", encoding: .utf8)
        let keyBody = String(publicKey.split(separator: " ")[1])
        for secret in [keyBody, "ssh-ed25519", "PRIVATE KEY", "credential"] {
            #expect(!cmdline.contains(secret), "\(secret) on the kernel command line: \(cmdline)")
        }

        // Logged in as root with the instance key; the host key is the one Wisp generated
        // (wisp ssh checks it strictly), the hostname is the instance's, no cloud-init ran.
        #expect(try box.check(["ssh", "bootc", "--", "id", "-un"]).stdoutText == "root\n")
        #expect(try box.check(["ssh", "bootc", "--", "hostname"]).stdoutText == "bootc\n")
        let hostKey = try box.check(["ssh", "bootc", "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).stdoutText
        let ourHostKey = try String(contentsOfFile: box.dir.file("data") + "/wisp/instances/bootc/ssh_host_ed25519_key.pub", encoding: .utf8)
        #expect(hostKey.split(separator: " ").prefix(2) == ourHostKey.split(separator: " ").prefix(2))
        #expect(try box.run(["ssh", "bootc", "--", "test", "-e", "/usr/bin/cloud-init"]).status == 1)
        // A writable ext4 root, the network up through networkd.
        #expect(try box.check(["ssh", "bootc", "--", "findmnt", "-no", "FSTYPE", "/"]).stdoutText == "ext4\n")
        #expect(try box.run(["ssh", "bootc", "--", "touch", "/var/tmp/written"]).status == 0)
        #expect(try box.check(["ssh", "bootc", "--", "networkctl", "--no-legend", "list"]).stdoutText.contains("routable"))

        let list = try JSONSerialization.jsonObject(with: Data(try box.check(["list", "--json"]).stdoutText.utf8)) as? [[String: Any]]
        #expect(list?.first?["image"] as? String == reference)
        let digest = try #require(list?.first?["digest"] as? String)
        #expect(digest.hasPrefix("sha256:") && digest.count == 71, "\(digest)")
        #expect(try box.check(["list"]).stdoutText.contains(reference + "@" + digest.prefix(19)))
        _ = try box.check(["rm", "--force", "bootc"])

        // The same image from a registry: same manifest digest, so the cached disk is reused.
        let registry = try TestRegistry(auth: false)
        try registry.push("oci-archive:\(fixture.archive)", as: "wisp/debian-bootc:e2e")
        clock = Date()
        let second = try box.run(["run", "--rm", "--accel", BootTests.accel, "--memory", "1536M", "--timeout", "900",
                                  "docker://\(registry.host)/wisp/debian-bootc:e2e", "--", "sh", "-c", "exit 4"])
        let secondRun = -clock.timeIntervalSinceNow
        #expect(second.status == 4, "\(second.stderrText)")
        #expect(second.stderrText.contains("using the cached disk"), "\(second.stderrText)")
        #expect(!second.stderrText.contains("building a disk"), "\(second.stderrText)")
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: box.dir.file("data") + "/wisp/instances")) ?? []).filter { !$0.hasPrefix(".") }  // .claim.lock stays
        #expect(left.isEmpty, "\(left)")
        print("container boot: first run (pull, disk, boot to SSH) \(Int(firstRun)) s; second run of the same digest from the registry (boot, command, rm) \(Int(secondRun)) s")
    }
    /// The same bootc layout with cloud-init left in: provisioned through the NoCloud seed
    /// as a cloud image is (the host user, not root; cloud-init done).
    @Test(.timeLimit(.minutes(20))) func bootcImageWithCloudInitUsesTheSeed() throws {
        let box = try BootTests.Sandbox()
        defer { box.cleanUp() }
        let fixture = try BootcImageFixture.get(wisp: box.wisp, cloudInit: true)
        let result = try box.run(["run", "--rm", "--name", "bootcci", "--accel", BootTests.accel, "--memory", "1536M", "--timeout", "900",
                                  "oci-archive:\(fixture.archive)", "--",
                                  "sh", "-c", "id -un; cat /etc/hostname; cloud-init status; grep -c wisp.e2e=kargs-d /proc/cmdline"])
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(!result.stderrText.contains("systemd credentials"), "\(result.stderrText)")
        let lines = result.stdoutText.split(separator: "\n").map(String.init)
        #expect(lines.count == 4 && lines[0] != "root" && lines[1] == "bootcci" && lines[2] == "status: done" && lines[3] == "1",
                "\(result.stdoutText)")
    }
}
