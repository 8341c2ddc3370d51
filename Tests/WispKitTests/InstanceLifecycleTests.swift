import Foundation
import Testing
import Machine
import WispCore
import WispTestSupport
@testable import WispKit

/// State transitions against a real QEMU: a firmware-only VM (OVMF, no disk) under TCG is a
/// real machine that runs, pauses, powers off and can be killed, without a guest image.
@Suite(.serialized) struct InstanceLifecycleTests {
    func makeStore(_ dir: TemporaryDirectory) -> InstanceStore {
        InstanceStore(paths: WispPaths(environment: ["HOME": dir.path, "XDG_DATA_HOME": dir.file("data"), "XDG_CACHE_HOME": dir.file("cache")]))
    }

    func makeFirmwareInstance(_ store: InstanceStore, name: String) throws -> InstanceRecord {
        let claimed = try store.claim(requested: name, base: "x")
        let files = store.files(claimed)
        let ovmf = try HostQEMU.firmware(for: X86_64Board())
        try FileManager.default.copyItem(atPath: ovmf.varsTemplate, toPath: files.uefiVars)
        let spec = MachineSpec(cpus: 1, memoryBytes: 256 << 20, forwards: [PortForward(hostPort: try InstanceCreator.freePort(), guestPort: 22)],
                               boot: .firmware(UEFIFirmware(code: ovmf.code, vars: files.uefiVars)), accelerator: .tcg)
        let record = InstanceRecord(name: claimed, image: "none", baseImagePath: "/dev/null", spec: spec, bootMode: .uefi,
                                    user: "u", hostname: claimed, sshPort: spec.forwards[0].hostPort, cloudInit: .disk, osName: nil)
        try store.save(record)
        return record
    }

    @Test func runPauseStopKillRemove() throws {
        let dir = try TemporaryDirectory("wisp-life")
        let store = makeStore(dir)
        let record = try makeFirmwareInstance(store, name: "fw")
        let files = store.files("fw")
        let controller = InstanceController(store: store)
        #expect(InstanceState.probe(files).state == .stopped)

        let booter = InstanceBooter(store: store, acceleratorChoice: .tcg, timeout: 60, progress: { _ in })
        let (booted, pid) = try booter.launch(record)
        defer { QEMULauncher.terminate(pid: pid) }
        #expect(booted.spec.accelerator == .tcg)
        #expect(QEMULauncher.isQEMU(pid: pid))
        #expect(InstanceState.probe(files).state == .running)
        #expect(controller.list().map(\.state) == [.running])

        // A second start while it runs is refused, and so is a concurrent holder of the lock.
        #expect(throws: WispError.self) { try controller.start("fw", booter: booter) }
        let held = try InstanceLock(path: files.lock, name: "fw")
        #expect(throws: WispError.self) { try InstanceLock(path: files.lock, name: "fw") }
        #expect(throws: WispError.self) { try controller.remove("fw", force: true) }
        held.release()
        // rm without --force refuses a running instance.
        #expect(throws: WispError.self) { try controller.remove("fw", force: false) }

        // The firmware writes to the serial log: the sign of life the KVM probe looks for.
        var log = ""
        for _ in 0..<900 where log.isEmpty { usleep(100_000); log = InstanceBooter.currentBootLog(files) }
        #expect(BootPhase.detect(in: log) >= .firmware)

        let qmp = try QMPClient(socketPath: files.qmpSocket)
        try qmp.execute("stop")
        #expect(InstanceState.fromQMPStatus(try qmp.status()) == .paused)
        try qmp.execute("cont")
        #expect(InstanceState.fromQMPStatus(try qmp.status()) == .running)

        // stop: firmware ignores the power button, so Wisp quits QEMU after the timeout.
        try controller.stop("fw", force: false, timeout: 2)
        #expect(!QEMULauncher.isQEMU(pid: pid))
        #expect(InstanceState.probe(files).state == .stopped)
        #expect(!FileManager.default.fileExists(atPath: files.pidFile))

        // kill -9 of QEMU leaves a pid file and sockets: detected as stopped, then repaired.
        let (_, pid2) = try booter.launch(record)
        #expect(kill(pid2, SIGKILL) == 0)
        for _ in 0..<50 where QEMULauncher.isQEMU(pid: pid2) { usleep(100_000) }
        #expect(FileManager.default.fileExists(atPath: files.pidFile))
        #expect(InstanceState.probe(files).state == .stopped)
        InstanceState.repairStale(files)
        #expect(!FileManager.default.fileExists(atPath: files.qmpSocket))

        try controller.remove("fw", force: false)
        #expect(controller.list().isEmpty)
    }

    @Test func stalePidOfAnotherProcessIsNotRunning() throws {
        let dir = try TemporaryDirectory("wisp-stale")
        let store = makeStore(dir)
        _ = try makeFirmwareInstance(store, name: "stale")
        let files = store.files("stale")
        // Our own pid is alive but is not a QEMU (as after a host reboot recycles pids).
        try AtomicOutput.write(Array("\(getpid())\n".utf8), to: files.pidFile)
        #expect(InstanceState.probe(files).state == .stopped)
        try AtomicOutput.write(Array("999999\n".utf8), to: files.pidFile)
        #expect(InstanceState.probe(files).state == .stopped)
    }

    @Test func qmpStatusMapping() {
        #expect(InstanceState.fromQMPStatus("running") == .running)
        #expect(InstanceState.fromQMPStatus("guest-panicked") == .crashed)
        #expect(InstanceState.fromQMPStatus("paused") == .paused)
        #expect(InstanceState.fromQMPStatus("shutdown") == .stopped)
    }
    /// `--ephemeral`: stopping discards the guest's writes. The overlay is written by
    /// qemu-io as a guest would, then `wisp stop` of the (stopped) instance makes it empty
    /// again on the same base at the same size; qemu-img is the judge.
    @Test func ephemeralStopDiscardsWrites() throws {
        let dir = try TemporaryDirectory("wisp-ephemeral")
        let store = makeStore(dir)
        var record = try makeFirmwareInstance(store, name: "eph")
        let files = store.files("eph")
        let base = dir.file("base.qcow2")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", base, "64M"])
        try ToolRunner.check("qemu-io", ["-f", "qcow2", "-c", "write -P 0x11 0 1M", base])
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", files.overlay, "128M"])
        try ToolRunner.check("qemu-io", ["-f", "qcow2", "-c", "write -P 0x22 0 64k", "-c", "write -P 0x33 100M 64k", files.overlay])
        record.baseImagePath = base
        record.ephemeral = true
        try store.save(record)
        let controller = InstanceController(store: store)
        #expect(controller.list().first?.ephemeral == true)

        try controller.stop("eph", force: false)
        let info = try JSONSerialization.jsonObject(with: ToolRunner.check("qemu-img", ["info", "--output=json", files.overlay]).stdout) as? [String: Any]
        #expect(info?["backing-filename"] as? String == base)
        #expect(info?["virtual-size"] as? Int == 128 << 20)
        // The base's bytes show through again; the writes are gone.
        try ToolRunner.check("qemu-io", ["-f", "qcow2", "-c", "read -P 0x11 0 64k", "-c", "read -P 0 100M 64k", files.overlay])
        #expect(try ToolRunner.check("qemu-img", ["check", files.overlay]).status == 0)
        let mode = (try FileManager.default.attributesOfItem(atPath: files.overlay)[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o600)

        // Not ephemeral: stop leaves the writes alone.
        try ToolRunner.check("qemu-io", ["-f", "qcow2", "-c", "write -P 0x44 0 64k", files.overlay])
        record.ephemeral = false
        try store.save(record)
        try controller.stop("eph", force: false)
        try ToolRunner.check("qemu-io", ["-f", "qcow2", "-c", "read -P 0x44 0 64k", files.overlay])
    }
}
