import Foundation
import Machine
import Testing
import WispCore
import WispTestSupport

/// Faults under an instance, with the real binary and a real QEMU, and no guest booted:
/// an instance of a blank disk runs OVMF, which is enough for QEMU to hold the overlay
/// open, write to it (through QEMU's own block layer, as a guest would), report a panic
/// through the pvpanic device and be killed. Each test costs seconds, not a boot.
@Suite(.serialized) struct InstanceFaultTests {
    /// The QOM path of the virtio disk backed by `overlay` (for HMP's `qemu-io -d`).
    static func diskDevice(_ qmp: QMPClient, overlay: String) throws -> String {
        guard case .array(let devices) = try qmp.execute("query-block") else { throw WispError(.failed, "query-block: no list") }
        for device in devices {
            if device["inserted"]?["file"]?.string == overlay, let qdev = device["qdev"]?.string { return qdev }
        }
        throw WispError(.notFound, "QEMU has no disk backed by \(overlay)")
    }

    static func monitor(_ qmp: QMPClient, _ command: String) throws -> String {
        try qmp.execute("human-monitor-command", arguments: ["command-line": command]).string ?? ""
    }

    static func qemuPID(_ box: FaultBox, _ name: String) throws -> Int32 {
        let text = try String(contentsOfFile: box.instancesDirectory + "/\(name)/qemu.pid", encoding: .utf8)
        guard let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw WispError(.failed, "no pid in qemu.pid") }
        return pid
    }

    /// QEMU is killed after writing (and flushing) 1 MiB into the overlay: `wisp list` says
    /// stopped, `qemu-img check` finds the overlay clean with the bytes in it, `wisp start`
    /// boots it again. Then the guest "panics" (a write to the pvpanic port, which is what
    /// the guest kernel's pvpanic driver does): `wisp list` says crashed.
    @Test func qemuKilledUnderARunningInstanceThenAPanic() throws {
        let box = try FaultBox("wisp-qemu-killed")
        let base = try box.blankDisk()
        let run = try box.runDetached(base, name: "q")
        #expect(run.status == 0, "\(run.stderrText)")
        defer { _ = try? box.wisp(["rm", "--force", "q"]) }
        let overlay = box.instancesDirectory + "/q/overlay.qcow2"
        let qmpSocket = box.instancesDirectory + "/q/qmp.sock"
        do {
            let qmp = try QMPClient(socketPath: qmpSocket)
            let disk = try Self.diskDevice(qmp, overlay: overlay)
            #expect(try Self.monitor(qmp, "qemu-io -d \(disk) \"write -P 0x5a 1M 1M\"").isEmpty)
            #expect(try Self.monitor(qmp, "qemu-io -d \(disk) \"flush\"").isEmpty)
        }
        let pid = try Self.qemuPID(box, "q")
        #expect(kill(pid, SIGKILL) == 0)
        for _ in 0..<100 where QEMULauncher.isQEMU(pid: pid) { usleep(50_000) }
        #expect(try box.states() == ["q": "stopped"])
        try ToolRunner.check("qemu-img", ["check", "-q", overlay])
        try ToolRunner.check("qemu-io", ["-r", "-f", "qcow2", "-c", "read -P 0x5a 1M 1M", "-c", "read -P 0 0 1M", overlay])

        let start = try box.wisp(["start", "--detach", "--accel", "tcg", "q"])
        #expect(start.status == 0, "\(start.stderrText)")
        #expect(try box.states() == ["q": "running"])
        // What the restarted instance reads: its overlay, shared read-only with QEMU.
        try ToolRunner.check("qemu-io", ["-r", "-U", "-f", "qcow2", "-c", "read -P 0x5a 1M 1M", overlay])
        do {
            let qmp = try QMPClient(socketPath: qmpSocket)
            // pvpanic's I/O port (0x505 on q35), bit 0: "guest panicked".
            _ = try Self.monitor(qmp, "o /b 0x505 1")
        }
        // QEMU pauses the machine on the panic (-action panic=pause); `wisp list` asks QMP.
        var states = try box.states()
        for _ in 0..<50 where states["q"] != "crashed" { usleep(100_000); states = try box.states() }
        #expect(states == ["q": "crashed"])
        // A crashed instance stops like any other, and starts again.
        #expect(try box.wisp(["stop", "q"]).status == 0)
        #expect(try box.states() == ["q": "stopped"])
        try ToolRunner.check("qemu-img", ["check", "-q", overlay])
        let removed = try box.wisp(["rm", "q"])
        #expect(removed.status == 0, "\(removed.stderrText)")
        #expect(try box.states().isEmpty)
    }

    /// instance.json overwritten with garbage: `wisp start` says what is wrong in one
    /// sentence, `wisp list` shows it incomplete, `wisp rm` removes it (QEMU included).
    @Test func corruptInstanceRecord() throws {
        let box = try FaultBox("wisp-corrupt-record")
        let base = try box.blankDisk()
        #expect(try box.runDetached(base, name: "c").status == 0)
        defer { _ = try? box.wisp(["rm", "--force", "c"]) }
        let record = box.instancesDirectory + "/c/instance.json"
        try Data("{\"name\": \"c\", \"spec\": [1, 2".utf8).write(to: URL(fileURLWithPath: record))
        #expect(try box.states() == ["c": "incomplete"])

        let stop = try box.wisp(["stop", "c"])
        #expect(stop.status == 1)
        #expect(stop.stderrText == "wisp: \(record): instance record: not a valid instance.json (the file is not JSON): wisp rm c removes the instance\n", "\(stop.stderrText)")
        let pid = try Self.qemuPID(box, "c")
        let removed = try box.wisp(["rm", "--force", "c"])
        #expect(removed.status == 0, "\(removed.stderrText)")
        #expect(!FileManager.default.fileExists(atPath: box.instancesDirectory + "/c"))
        #expect(!QEMULauncher.isQEMU(pid: pid))

        // A record that is JSON but not an instance's: the missing field is named.
        #expect(try box.runDetached(base, name: "d").status == 0)
        defer { _ = try? box.wisp(["rm", "--force", "d"]) }
        #expect(try box.wisp(["stop", "--force", "d"]).status == 0)
        try Data("{\"name\": \"d\"}".utf8).write(to: URL(fileURLWithPath: box.instancesDirectory + "/d/instance.json"))
        let start = try box.wisp(["start", "--detach", "--accel", "tcg", "d"])
        #expect(start.status == 1)
        #expect(start.stderrText.contains("not a valid instance.json (") && start.stderrText.contains("is missing at the top level): wisp rm d"), "\(start.stderrText)")
        #expect(try box.wisp(["rm", "d"]).status == 0)
        #expect(try box.states().isEmpty)
    }

    /// The overlay's header overwritten: `wisp start` names the file and the structure
    /// instead of starting QEMU on it; `wisp rm` removes the instance.
    @Test func corruptOverlay() throws {
        let box = try FaultBox("wisp-corrupt-overlay")
        let base = try box.blankDisk()
        #expect(try box.runDetached(base, name: "o").status == 0)
        defer { _ = try? box.wisp(["rm", "--force", "o"]) }
        #expect(try box.wisp(["stop", "--force", "o"]).status == 0)
        let overlay = box.instancesDirectory + "/o/overlay.qcow2"
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: overlay))
        handle.write(Data(repeating: 0xEE, count: 512))
        try handle.close()

        let start = try box.wisp(["start", "--detach", "--accel", "tcg", "o"])
        #expect(start.status == 1)
        #expect(start.stderrText.hasPrefix("wisp: ") && start.stderrText.contains(overlay), "\(start.stderrText)")
        #expect(start.stderrText.split(separator: "\n").count == 1, "one sentence: \(start.stderrText)")
        #expect(try box.states() == ["o": "stopped"])
        #expect(try box.wisp(["rm", "o"]).status == 0)
        #expect(try box.states().isEmpty)
        #expect(allEntries(box.instancesDirectory) == [".claim.lock"])
    }
}
