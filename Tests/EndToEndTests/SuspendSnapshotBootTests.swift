#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import WispCore
import WispTestSupport

/// Issue 19's suspend, resume and snapshots against one real guest: the test image booted
/// once under TCG, then suspended and resumed (the same kernel still running: same boot
/// id, uptime going on; its clock set), a live snapshot with memory restored while running,
/// a disk-only snapshot of the stopped instance, the live one restored from stopped, the
/// disk-only one restored and read back without booting, judged by qemu-img; wisp rm
/// removes it all. One cold boot in all.
@Suite(.serialized) struct SuspendSnapshotBootTests {
    /// The guest's `date +%s.%N` bracketed by the host's clock before and after the login.
    static func clockSkew(_ box: BootTests.Sandbox, _ name: String) throws -> (guest: Double, before: Double, after: Double) {
        let before = Date().timeIntervalSince1970
        let guest = Double(try box.check(["ssh", name, "--", "date", "+%s.%N"]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        return (guest, before, Date().timeIntervalSince1970)
    }

    static func bootID(_ box: BootTests.Sandbox, _ name: String) throws -> String {
        try box.check(["ssh", name, "--", "cat", "/proc/sys/kernel/random/boot_id"]).stdoutText
    }

    @Test(.timeLimit(.minutes(40))) func suspendResumeAndSnapshotsOnOneGuest() throws {
        let box = try BootTests.Sandbox()
        defer { box.cleanUp() }
        let fm = FileManager.default
        let directory = box.dir.file("data") + "/wisp/instances/ss"
        try box.check(["run", "--name", "ss", "--accel", BootTests.accel, "--memory", "1536M", "--timeout", "900", box.image])

        // Suspend: a file written just before is kept, the state is owner-only and read-only.
        try box.check(["ssh", "ss", "--", "echo before-suspend > marker.txt"])
        let bootID = try Self.bootID(box, "ss")
        let suspend = try box.check(["suspend", "ss"])
        #expect(suspend.stderrText.contains("ss is suspended in"))
        var info = stat()
        #expect(stat(directory + "/suspend.state", &info) == 0 && info.st_mode & 0o777 == 0o400)
        #expect(stat(directory + "/suspend.json", &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(!fm.fileExists(atPath: directory + "/qemu.pid"))
        let listed = try JSONSerialization.jsonObject(with: box.check(["list", "--json"]).stdout) as? [[String: Any]]
        #expect(listed?.first?["state"] as? String == "suspended")
        #expect(try box.check(["list"]).stdoutText.contains("suspended"))

        // More than ten seconds later, resumed: the same kernel, its clock set to the host's.
        sleep(12)
        let started = Date()
        let resume = try box.check(["resume", "ss", "--accel", BootTests.accel])
        let resumeSeconds = Date().timeIntervalSince(started)
        print("resume: ready in \(String(format: "%.2f", resumeSeconds)) s (\(resume.stderrText.trimmingCharacters(in: .whitespacesAndNewlines)))")
        #expect(resume.stderrText.contains("ss is resumed and ready in"))
        #expect(!resume.stderrText.contains("booting it cold"))
        #expect(try Self.bootID(box, "ss") == bootID)
        #expect(try box.check(["ssh", "ss", "--", "cat", "marker.txt"]).stdoutText == "before-suspend\n")
        let clock = try Self.clockSkew(box, "ss")
        #expect(clock.guest >= clock.before - 2 && clock.guest <= clock.after + 2, "guest \(clock.guest), host \(clock.before)...\(clock.after)")
        #expect(!fm.fileExists(atPath: directory + "/suspend.state"))  // used: never loaded twice
        #expect(try box.check(["list"]).stdoutText.contains("running"))

        // A live snapshot holds memory; restored while running, a later file is gone.
        let live = try box.check(["snapshot", "create", "ss", "live"])
        #expect(live.stderrText.contains("(disk and memory)"))
        try box.check(["ssh", "ss", "--", "echo after > after.txt"])
        try box.check(["snapshot", "restore", "ss", "live"])
        #expect(try box.run(["ssh", "ss", "--", "test", "-e", "after.txt"]).status == 1)
        #expect(try box.check(["ssh", "ss", "--", "cat", "marker.txt"]).stdoutText == "before-suspend\n")
        let restoredClock = try Self.clockSkew(box, "ss")
        #expect(restoredClock.guest >= restoredClock.before - 2 && restoredClock.guest <= restoredClock.after + 2)

        // Stopped: a disk-only snapshot; qemu-img lists both and finds the image sound.
        try box.check(["ssh", "ss", "--", "sh -c 'echo kept > c.txt && sync'"])
        let homeDirectory = try box.check(["ssh", "ss", "--", "pwd"]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        try box.check(["stop", "ss"])
        let disk = try box.check(["snapshot", "create", "ss", "disk"])
        #expect(disk.stderrText.contains("(disk)"))
        let snapshots = try box.check(["snapshot", "list", "ss"]).stdoutText.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        #expect(snapshots.dropFirst().map { $0.first } == ["live", "disk"])
        #expect(snapshots.dropFirst().map { $0.dropFirst().first == "-" } == [false, true])
        let overlay = directory + "/overlay.qcow2"
        let qemuList = try ToolRunner.check("qemu-img", ["snapshot", "-l", overlay]).stdoutText
        #expect(qemuList.contains(" live ") && qemuList.contains(" disk "))
        #expect(try ToolRunner.run("qemu-img", ["check", overlay]).status == 0)
        #expect(try box.run(["snapshot", "create", "ss", "disk"]).status == 1)  // a name is taken once

        // The live snapshot restored from stopped: running again, as it was (no c.txt).
        try box.check(["snapshot", "restore", "ss", "live"])
        #expect(try box.run(["ssh", "ss", "--", "test", "-e", "c.txt"]).status == 1)
        #expect(try box.check(["ssh", "ss", "--", "cat", "marker.txt"]).stdoutText == "before-suspend\n")
        try box.check(["ssh", "ss", "--", "sh -c 'echo later > d.txt && sync'"])
        // A disk-only snapshot is not restored under a running guest.
        #expect(try box.run(["snapshot", "restore", "ss", "disk"]).status == 1)
        try box.check(["stop", "ss"])
        try box.check(["snapshot", "restore", "ss", "disk"])
        let home = try box.check(["fs", "ls", "ss", homeDirectory]).stdoutText
        #expect(home.contains("c.txt") && !home.contains("d.txt"))
        #expect(try ToolRunner.run("qemu-img", ["check", overlay]).status == 0)

        try box.check(["snapshot", "rm", "ss", "live"])
        #expect(!(try ToolRunner.check("qemu-img", ["snapshot", "-l", overlay]).stdoutText.contains(" live ")))
        try box.check(["rm", "ss"])
        #expect(!fm.fileExists(atPath: directory))
    }
}
