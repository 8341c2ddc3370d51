#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Machine
import WispCore
import WispTestSupport
@testable import WispKit

/// `wisp snapshot` against a real QEMU and qemu-img: a firmware-only VM under TCG with one
/// qcow2 disk, its contents written and read back with qemu-io (and QEMU's own qemu-io
/// monitor command while it runs), snapshots judged by `qemu-img snapshot -l` and `check`.
/// The guest-facing half (files in a real guest) is in SuspendSnapshotBootTests.
@Suite(.serialized) struct InstanceSnapshotTests {
    @Test func namesAreCheckedBeforeAnyWork() {
        for bad in ["", "1", "12ab", "a b", "a/b", "-x", String(repeating: "a", count: 65), "é"] {
            #expect(throws: WispError.self) { try InstanceSnapshots.validate(snapshot: bad) }
        }
        for good in ["a", "before-upgrade", "v1.2_rc", String(repeating: "a", count: 64)] {
            #expect(throws: Never.self) { try InstanceSnapshots.validate(snapshot: good) }
        }
    }

    static func qemuIO(_ disk: String, _ command: String) throws -> ToolResult {
        try ToolRunner.run("qemu-io", ["-f", "qcow2", "-c", command, disk])
    }

    /// Several disks: a snapshot is on all of them or on none, and a restore reverts none
    /// unless every disk has the tag (judged by qemu-img's own table and qemu-io patterns).
    @Test func severalDisksAreSnapshottedAllOrNothing() throws {
        let dir = try TemporaryDirectory("wisp-snap-disks")
        let store = InstanceStore(paths: WispPaths(environment: ["HOME": dir.path, "XDG_DATA_HOME": dir.file("data"), "XDG_CACHE_HOME": dir.file("cache")]))
        var record = try InstanceLifecycleTests().makeFirmwareInstance(store, name: "two")
        let files = store.files("two")
        let second = dir.file("data.qcow2")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", files.overlay, "16M"])
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", second, "16M"])
        record.spec.disks = [DiskAttachment(path: files.overlay, format: .qcow2), DiskAttachment(path: second, format: .qcow2)]
        try store.save(record)
        let snapshots = InstanceSnapshots(store: store)
        let booter = InstanceBooter(store: store, acceleratorChoice: .tcg, timeout: 60, progress: { _ in })
        func tags(_ path: String) throws -> String { try ToolRunner.check("qemu-img", ["snapshot", "-l", path]).stdoutText }

        // The second disk cannot take a snapshot (its header is damaged): the first keeps no tag.
        let good = try Data(contentsOf: URL(fileURLWithPath: second))
        try Data(repeating: 0, count: 512).write(to: URL(fileURLWithPath: second))
        #expect(throws: WispError.self) { _ = try snapshots.create("two", snapshot: "half") }
        #expect(!(try tags(files.overlay)).contains(" half "))
        try good.write(to: URL(fileURLWithPath: second))

        // A tag on the first disk only (made behind Wisp's back): restore reverts nothing.
        #expect(try Self.qemuIO(files.overlay, "write -P 0x11 0 64k").status == 0)
        try ToolRunner.check("qemu-img", ["snapshot", "-c", "only-first", files.overlay])
        #expect(try Self.qemuIO(files.overlay, "write -P 0x22 0 64k").status == 0)
        do {
            _ = try snapshots.restore("two", snapshot: "only-first", booter: booter)
            Issue.record("a snapshot missing from the second disk was restored")
        } catch let error as WispError {
            #expect(error.kind == .notFound && error.message.contains(second), "\(error)")
        }
        #expect(try Self.qemuIO(files.overlay, "read -P 0x22 0 64k").status == 0)

        // Both disks: taken on both, restored on both.
        #expect(try Self.qemuIO(second, "write -P 0x33 0 64k").status == 0)
        _ = try snapshots.create("two", snapshot: "both")
        #expect(try tags(files.overlay).contains(" both ") && (try tags(second)).contains(" both "))
        #expect(try Self.qemuIO(files.overlay, "write -P 0x44 0 64k").status == 0)
        #expect(try Self.qemuIO(second, "write -P 0x55 0 64k").status == 0)
        #expect(try snapshots.restore("two", snapshot: "both", booter: booter) == .disk)
        #expect(try Self.qemuIO(files.overlay, "read -P 0x22 0 64k").status == 0)
        #expect(try Self.qemuIO(second, "read -P 0x33 0 64k").status == 0)
    }

    @Test func stoppedAndRunningSnapshotsRestoreTheDiskAndMemory() throws {
        let dir = try TemporaryDirectory("wisp-snap")
        let store = InstanceStore(paths: WispPaths(environment: ["HOME": dir.path, "XDG_DATA_HOME": dir.file("data"), "XDG_CACHE_HOME": dir.file("cache")]))
        var record = try InstanceLifecycleTests().makeFirmwareInstance(store, name: "snap")
        let files = store.files("snap")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", files.overlay, "64M"])
        record.spec.disks = [DiskAttachment(path: files.overlay, format: .qcow2)]
        try store.save(record)
        let snapshots = InstanceSnapshots(store: store)
        let booter = InstanceBooter(store: store, acceleratorChoice: .tcg, timeout: 60, progress: { _ in })

        // Stopped: disk only, through qemu-img; restoring brings the zeros back.
        #expect(try Self.qemuIO(files.overlay, "write -P 0x11 0 64k").status == 0)
        let cold = try snapshots.create("snap", snapshot: "cold")
        #expect(!cold.withMemory)
        #expect(try ToolRunner.check("qemu-img", ["snapshot", "-l", files.overlay]).stdoutText.contains(" cold "))
        #expect(try Self.qemuIO(files.overlay, "write -P 0x22 0 64k").status == 0)
        #expect(try snapshots.restore("snap", snapshot: "cold", booter: booter) == .disk)
        #expect(try Self.qemuIO(files.overlay, "read -P 0x11 0 64k").status == 0)
        #expect(try ToolRunner.run("qemu-img", ["check", files.overlay]).status == 0)
        do {
            _ = try snapshots.create("snap", snapshot: "cold")
            Issue.record("a second snapshot named cold was taken")
        } catch let error as WispError { #expect(error.kind == .alreadyExists) }

        // Running: disk and memory through QMP's snapshot jobs.
        let (_, pid) = try booter.launch(record)
        defer { QEMULauncher.terminate(pid: pid) }
        let hot = try snapshots.create("snap", snapshot: "hot")
        #expect(hot.withMemory && hot.memoryBytes > 0)
        do {
            // QEMU's QMP socket serves one client at a time: this one closes before wisp's.
            let qmp = try QMPClient(socketPath: files.qmpSocket)
            try qmp.execute("human-monitor-command", arguments: ["command-line": "qemu-io disk0 \"write -P 0x33 0 64k\""])
        }
        do {
            _ = try snapshots.restore("snap", snapshot: "cold", booter: booter)
            Issue.record("a disk-only snapshot was restored under a running machine")
        } catch let error as WispError { #expect(error.kind == .busy) }
        #expect(try snapshots.restore("snap", snapshot: "hot", booter: booter, waitForSSH: false) == .diskAndMemory(clock: nil))
        #expect(InstanceState.probe(files).state == .running)
        try snapshots.remove("snap", snapshot: "hot")
        #expect(try snapshots.list("snap").map(\.name) == ["cold"])
        // QEMU quits through QMP, which flushes the qcow2 metadata it caches: a SIGKILL here
        // would lose cached L2/refcount updates and make the disk checks below race the cache.
        do {
            let qmp = try QMPClient(socketPath: files.qmpSocket)
            try qmp.execute("quit")
        }
        QEMULauncher.terminate(pid: pid, signal: 0, timeout: 30)
        QEMULauncher.terminate(pid: pid)
        InstanceState.repairStale(files)
        // The running machine's write was undone by the restore (the disk holds hot's 0x11).
        let readBack = try Self.qemuIO(files.overlay, "read -P 0x11 0 64k")
        #expect(readBack.status == 0, "\(readBack.stdoutText) \(readBack.stderrText)")
        #expect(try ToolRunner.run("qemu-img", ["check", files.overlay]).status == 0)

        // Suspended: its saved memory belongs to the disk as it is.
        let (_, again) = try booter.launch(record)
        defer { QEMULauncher.terminate(pid: again) }
        try InstanceSuspender(store: store).suspend("snap", flushGuest: false, notice: { _ in })
        do {
            _ = try snapshots.create("snap", snapshot: "late")
            Issue.record("a suspended instance's disk was snapshotted")
        } catch let error as WispError { #expect(error.kind == .busy) }
        try snapshots.remove("snap", snapshot: "cold")
        #expect(try snapshots.list("snap").isEmpty)
    }
}
