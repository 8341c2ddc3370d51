import Foundation
import Testing
import WispCore
import WispTestSupport

/// The test helper that starts libvirt's daemons: it must return once the parent forked and
/// exited, even though the daemon lives on (Foundation's Process would wait for the daemon,
/// which held both CI threads forever when libvirtd was first started by the tests).
@Suite struct ForkingDaemonTests {
    @Test(.timeLimit(.minutes(20))) func returnsWhenTheParentExitsAndTheDaemonGetsNoDescriptors() throws {
        let dir = try TemporaryDirectory()
        let report = dir.file("fds")
        // The "daemon": a background shell that outlives its parent by a minute (59 s, a number only this test uses) and first
        // lists its open descriptors (the parent's exit status is 7).
        let started = Date()
        let status = try ForkingDaemon.start("/bin/sh", ["-c", "(ls /proc/self/fd > \(report).tmp; mv \(report).tmp \(report); exec sleep 59) & exit 7"])
        #expect(status == 7)
        // A hang guard, not a speed check: the daemon sleeps for 59 s.
        #expect(Date().timeIntervalSince(started) < 50)
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: report) && Date() < deadline { usleep(20_000) }
        let listed = try String(contentsOfFile: report, encoding: .utf8).split(separator: "\n").compactMap { Int($0) }
        // 0, 1, 2 and the descriptor ls itself opened on /proc/self/fd: nothing of ours.
        #expect(listed.filter { $0 > 2 }.count <= 1, "\(listed)")
        _ = try? ToolRunner.run("pkill", ["-f", "^sleep 59$"])
    }

    @Test func aMissingExecutableIsAnError() {
        #expect(throws: WispError.self) { try ForkingDaemon.start("/nonexistent/daemon", []) }
    }
}
