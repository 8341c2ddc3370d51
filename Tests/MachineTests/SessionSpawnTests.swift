import Foundation
import Testing
@testable import Machine
import WispCore
import WispTestSupport

/// What a process Wisp leaves running (QEMU, virtiofsd) inherits: judged by the kernel's own
/// account of the child (/proc/PID/status), from a spawning thread set up the way `wisp run`'s
/// are (termination signals ignored by RunInterruption, everything blocked on a worker thread).
@Suite(.serialized) struct SessionSpawnTests {
    @Test func theChildStartsWithACleanSignalStateInItsOwnSession() throws {
        let dir = try TemporaryDirectory("wisp-spawn")
        let previous = [SIGINT, SIGTERM, SIGHUP].map { ($0, signal($0, SIG_IGN)) }
        defer { for (number, handler) in previous { signal(number, handler) } }
        // Spawn from a thread with every signal blocked, as libdispatch's workers are.
        let result = LockedValue<Result<pid_t, any Error>?>(nil)
        let thread = Thread {
            var all = sigset_t(), old = sigset_t()
            sigfillset(&all)
            pthread_sigmask(SIG_SETMASK, &all, &old)
            defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
            result.withLock { $0 = Result { try SessionSpawn.start("/bin/sleep", ["60"], logPath: dir.file("log"), truncateLog: true) } }
        }
        thread.start()
        while result.withLock({ $0 == nil }) { usleep(10_000) }
        let pid = try #require(try result.withLock { $0 }?.get())
        var reaped = false
        defer { if !reaped { kill(pid, SIGKILL); var status: Int32 = 0; waitpid(pid, &status, 0) } }
        var status = ""
        for _ in 0..<200 {
            // Before exec the child still shows the parent's name; wait for sleep.
            status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            if status.contains("Name:\tsleep") { break }
            usleep(10_000)
        }
        func mask(_ field: String) throws -> UInt64 {
            let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("\(field):") })
            return try #require(UInt64(line.split(separator: "\t").last ?? "", radix: 16))
        }
        #expect(try mask("SigBlk") == 0)
        for number in [SIGINT, SIGTERM, SIGHUP] {
            #expect(try mask("SigIgn") & (UInt64(1) << UInt64(number - 1)) == 0, "signal \(number) is ignored in the child")
        }
        // Its own session: a terminal's signals never reach it.
        #expect(getsid(pid) == pid)
        // And a plain kill stops it.
        kill(pid, SIGTERM)
        var code: Int32 = 0
        #expect(waitpid(pid, &code, 0) == pid)
        reaped = true
        #expect((code & 0x7f) == SIGTERM)
    }
}
