import Foundation
import Testing
import WispCore
import WispTestSupport

/// `wisp run --engine libvirt:qemu+ssh://...` without a second machine: a private sshd on
/// 127.0.0.1 plays the remote libvirt host (libvirt's ssh transport logs in there and runs
/// virt-ssh-helper, which talks to the system daemon). The guest's forward listens on that
/// "host's" loopback; Wisp must reach it through the SSH login to the host: the sshd's log
/// shows the forwarded connection (`server_request_direct_tcpip` to 127.0.0.1:<guest port>), for readiness
/// and for `wisp ssh`. One boot.
@Suite(.serialized) struct LibvirtRemoteBootTests {
    static func virsh(_ arguments: [String]) throws -> String {
        try ToolRunner.check("virsh", ["-c", LibvirtDaemon.uri] + arguments).stdoutText
    }

    static func forwards(_ log: String, port: Int) -> Int {
        // sshd's DEBUG line for each forwarded connection (`ssh -W`), one per login through it:
        // "server_request_direct_tcpip: originator 127.0.0.1 port 65535, target 127.0.0.1 port 40022"
        // (sshd -e ends its lines with CRLF: "\r\n" is one Character, a newline.)
        log.split(whereSeparator: \.isNewline).filter {
            $0.contains("server_request_direct_tcpip:") && $0.hasSuffix(", target 127.0.0.1 port \(port)")
        }.count
    }

    @Test(.timeLimit(.minutes(30))) func runThroughSSHHostLogInRemove() throws {
        try LibvirtDaemon.ensureRunning()
        let box = try BootTests.Sandbox()
        defer { box.cleanUp() }
        let host = try PrivateSSHServer(in: box.dir)
        defer { host.stop() }
        let uri = "qemu+ssh://root@127.0.0.1:\(host.port)/system?keyfile=\(host.clientKey)&no_verify=1"
        // libvirt's own transport through that sshd works before Wisp is involved.
        #expect(try ToolRunner.run("virsh", ["-c", uri, "version"]).status == 0, "\(host.log.suffix(2000))")

        let started = Date()
        let run = try box.check(["run", "--engine", "libvirt:\(uri)", "--name", "far", "--accel", BootTests.accel,
                                 "--memory", "1536M", "--timeout", "900", box.image])
        #expect(run.stdoutText == "far\n")
        #expect(!run.stderrText.contains("does not wait"))
        let bootSeconds = Date().timeIntervalSince(started)

        let instanceDirectory = box.dir.file("data") + "/wisp/instances/far"
        let placement = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: instanceDirectory + "/libvirt.json"))) as? [String: Any])
        #expect(placement["uri"] as? String == uri)
        let domain = try #require(placement["domain"] as? String)
        let record = try #require(try JSONSerialization.jsonObject(with: box.check(["info", "far", "--json"]).stdout) as? [String: Any])
        let port = try #require((record["ssh"] as? [String: Any])?["port"] as? Int, "\(record)")
        #expect(try Self.virsh(["domstate", domain]).trimmingCharacters(in: .whitespacesAndNewlines) == "running")

        // Readiness logged in through the host: at least one forward to the guest's port.
        let afterRun = Self.forwards(host.log, port: port)
        #expect(afterRun >= 1, "no forward to 127.0.0.1:\(port) in the sshd log: \(host.log.suffix(3000))")

        let uname = try box.check(["ssh", "far", "--", "uname", "-a"]).stdoutText
        #expect(uname.hasPrefix("Linux far "))
        let afterSSH = Self.forwards(host.log, port: port)
        #expect(afterSSH > afterRun, "wisp ssh did not go through the host")
        // wisp cp both ways, through the host too.
        let sent = box.dir.file("sent.txt"), back = box.dir.file("back.txt")
        try "through the jump\n".write(toFile: sent, atomically: true, encoding: .utf8)
        try box.check(["cp", sent, "far:/tmp/sent.txt"])
        try box.check(["cp", "far:/tmp/sent.txt", back])
        #expect(try String(contentsOfFile: back, encoding: .utf8) == "through the jump\n")
        #expect(Self.forwards(host.log, port: port) >= afterSSH + 2, "wisp cp did not go through the host")
        // The guest's host key is checked strictly: a wrong key in known_hosts is refused.
        let knownHosts = instanceDirectory + "/known_hosts"
        let saved = try String(contentsOfFile: knownHosts, encoding: .utf8)
        let other = try String(contentsOfFile: host.clientKey + ".pub", encoding: .utf8).split(separator: " ")
        try "wisp-far \(other[0]) \(other[1])\n".write(toFile: knownHosts, atomically: true, encoding: .utf8)
        let refused = try box.run(["ssh", "far", "--", "true"])
        #expect(refused.status != 0)
        try saved.write(toFile: knownHosts, atomically: true, encoding: .utf8)

        try box.check(["rm", "--force", "far"])
        #expect(!FileManager.default.fileExists(atPath: instanceDirectory))
        #expect(!(try Self.virsh(["list", "--all", "--name"])).contains(domain))
        #expect(!(try Self.virsh(["vol-list", "wisp"])).contains(domain))
        print("remote libvirt boot to SSH: \(String(format: "%.1f", bootSeconds)) s; whole test: \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }
}
