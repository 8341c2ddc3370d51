import Foundation
import Testing
import Machine
import WispCore
import WispKit
import WispTestSupport

/// The SSH probes readiness and suspend use, against a real OpenSSH server on 127.0.0.1 that
/// stands in for a guest: the strict host-key check under the instance's alias, and the limit
/// on a login whose command never finishes (a guest's `sync` stuck on stalled I/O).
@Suite(.serialized) struct InstanceSSHProbeTests {
    @Test(.timeLimit(.minutes(20))) func aCommandThatNeverFinishesIsKilledAtTheLimit() throws {
        let dir = try TemporaryDirectory("wisp-ssh-probe")
        let server = try PrivateSSHServer(in: dir)
        defer { server.stop() }
        let files = InstanceFiles(directory: dir.file("instance"))
        try FileManager.default.createDirectory(atPath: files.directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: server.clientKey, toPath: files.privateKey)
        let spec = MachineSpec(cpus: 1, memoryBytes: 512 << 20, forwards: [PortForward(hostPort: server.port, guestPort: 22)])
        let record = InstanceRecord(name: "probe", image: "none", baseImagePath: "/nonexistent", spec: spec, bootMode: .uefi, user: "root",
                                    hostname: "probe", sshPort: server.port, cloudInit: .disk, osName: nil)
        let ssh = InstanceSSH(record: record, files: files)
        // Without the host key under the alias the strict check refuses the login.
        #expect(!ssh.probe("true", limit: 20))
        let hostKey = try String(contentsOfFile: dir.file("sshd_host_ed25519.pub"), encoding: .utf8)
        try "\(ssh.hostAlias) \(hostKey)".write(toFile: files.knownHosts, atomically: true, encoding: .utf8)
        #expect(ssh.probe("true", limit: 20))
        #expect(!ssh.probe("false", limit: 20))
        // A command that would run for 10 minutes is killed after the limit.
        let started = Date()
        #expect(!ssh.probe("sleep 600", limit: 3))
        let seconds = Date().timeIntervalSince(started)
        #expect(seconds >= 2.5 && seconds < 120, "\(seconds) s")
    }
}
