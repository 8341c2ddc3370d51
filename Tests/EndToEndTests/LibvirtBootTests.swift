import Foundation
import Testing
import WispCore
import WispTestSupport

/// `wisp run --engine libvirt` against the real system daemon (started here when it is not
/// running: CI has no systemd): the test image booted as a libvirt domain of type qemu
/// (TCG), logged into over SSH, stopped through ACPI, removed, and then nothing of it left
/// in libvirt: no domain, no volume in Wisp's pool. One boot.
@Suite(.serialized) struct LibvirtBootTests {
    static func virsh(_ arguments: [String]) throws -> String {
        try ToolRunner.check("virsh", ["-c", LibvirtDaemon.uri] + arguments).stdoutText
    }

    @Test(.timeLimit(.minutes(30))) func runSSHStopRemoveLeavesNothing() throws {
        try LibvirtDaemon.ensureRunning()
        let box = try BootTests.Sandbox()
        defer { box.cleanUp() }
        let started = Date()
        let run = try box.check(["run", "--engine", "libvirt", "--name", "lv", "--accel", BootTests.accel, "--memory", "1536M",
                                 "--timeout", "900", box.image])
        #expect(run.stdoutText == "lv\n")
        let bootSeconds = Date().timeIntervalSince(started)

        let listed = try JSONSerialization.jsonObject(with: box.check(["list", "--json"]).stdout) as? [[String: Any]]
        let instance = try #require(listed?.first)
        #expect(instance["engine"] as? String == "libvirt:\(LibvirtDaemon.uri)")
        #expect(instance["state"] as? String == "running")
        let table = try box.check(["list"]).stdoutText
        #expect(table.contains("ENGINE") && table.contains("libvirt:qemu:///system"))

        // libvirt's view: the domain runs under TCG, its files are volumes of Wisp's pool.
        let instanceDirectory = box.dir.file("data") + "/wisp/instances/lv"
        let placement = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: instanceDirectory + "/libvirt.json"))) as? [String: Any])
        let domain = try #require(placement["domain"] as? String)
        #expect(try Self.virsh(["domstate", domain]).trimmingCharacters(in: .whitespacesAndNewlines) == "running")
        let live = try Self.virsh(["dumpxml", domain])
        #expect(live.contains("<domain type='qemu'"))
        #expect(live.contains("<kernel>/var/lib/libvirt/images/wisp/\(domain)-vmlinuz</kernel>"))
        let volumes = try Self.virsh(["vol-list", "wisp"])
        for role in ["base0", "overlay", "seed.iso", "vmlinuz", "initrd.img"] { #expect(volumes.contains("\(domain)-\(role)")) }
        // The definition Wisp gave libvirt passes libvirt's own schema.
        let validated = try ToolRunner.run("virt-xml-validate", [instanceDirectory + "/libvirt-domain.xml", "domain"])
        #expect(validated.status == 0, "\(validated.stderrText)")
        // wisp export libvirt prints that definition; list --json keeps to the schema.
        let exported = try box.check(["export", "libvirt", "lv"]).stdoutText
        #expect(exported == (try String(contentsOfFile: instanceDirectory + "/libvirt-domain.xml", encoding: .utf8)))
        let problems = try JSONSchemaJudge.problems(try box.check(["list", "--json"]).stdoutText, definition: "list")
        #expect(problems.isEmpty, "\(problems)")
        // info shows the disks the domain really uses: the pool's volumes, read from their headers.
        let infoText = try box.check(["info", "lv", "--json"]).stdoutText
        #expect(try JSONSchemaJudge.problems(infoText, definition: "instance").isEmpty)
        let info = try #require(try JSONSerialization.jsonObject(with: Data(infoText.utf8)) as? [String: Any])
        let disks = try #require(info["disks"] as? [[String: Any]])
        #expect(disks.first?["path"] as? String == "/var/lib/libvirt/images/wisp/\(domain)-overlay")
        #expect(((disks.first?["virtual-size"] as? Int) ?? 0) > 0, "\(disks)")

        // Logged in with the keys and host key Wisp made; the guest sees its hostname.
        let uname = try box.check(["ssh", "lv", "--", "uname", "-a"]).stdoutText
        #expect(uname.hasPrefix("Linux lv "))

        // ACPI shutdown through libvirt: the domain is shut off but still defined.
        try box.check(["stop", "lv"])
        #expect(try Self.virsh(["domstate", domain]).trimmingCharacters(in: .whitespacesAndNewlines) == "shut off")
        let stopped = try JSONSerialization.jsonObject(with: box.check(["list", "--json"]).stdout) as? [[String: Any]]
        #expect(stopped?.first?["state"] as? String == "stopped")
        // Verbs that work on Wisp's own disk or QEMU refuse a libvirt instance (its disk is a
        // pool volume; the local overlay is an empty placeholder), saying what to use instead.
        for arguments in [["snapshot", "create", "lv", "s1"], ["suspend", "lv"], ["fs", "ls", "lv", "/"],
                          ["image", "export", "--instance", "lv", box.dir.file("lv.ova")]] {
            let refused = try box.run(arguments)
            #expect(refused.status != 0 && refused.stderrText.contains("runs under libvirt, whose pool holds its disk"),
                    "\(arguments): \(refused.stderrText)")
        }
        #expect(!FileManager.default.fileExists(atPath: box.dir.file("lv.ova")))

        try box.check(["rm", "lv"])
        #expect(!FileManager.default.fileExists(atPath: instanceDirectory))
        #expect(!(try Self.virsh(["list", "--all", "--name"])).contains(domain))
        #expect(!(try Self.virsh(["vol-list", "wisp"])).contains(domain))
        #expect(!FileManager.default.fileExists(atPath: "/var/lib/libvirt/qemu/nvram/\(domain)_VARS.fd"))
        print("libvirt boot to SSH: \(String(format: "%.1f", bootSeconds)) s; whole test: \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }
}
