#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Foundation
import WispCore

/// Starts a daemon that forks itself into the background (`libvirtd -d`, `virtlogd -d`) and
/// waits for the parent to exit.
///
/// Not through Foundation's `Process`: it learns that a child exited from a socket the child
/// inherits, and a daemon that keeps every descriptor above 2 open (libvirt's daemons do)
/// holds that socket forever, so `waitUntilExit` never returns. Two tests blocked that way
/// held both threads of CI's 2-core cooperative pool and stalled the whole run. Here the
/// daemon gets /dev/null for stdio and no other descriptor (`closefrom` in the child, so a
/// descriptor another thread opens meanwhile cannot leak either), and the parent is reaped
/// with `waitpid`.
public enum ForkingDaemon {
    /// Runs `executable arguments` and returns the parent's exit status once it has forked
    /// the daemon and exited (or the wait status, when it died from a signal). A parent that
    /// has not exited within `timeout` seconds is killed, and that is a `.timedOut` error.
    public static func start(_ executable: String, _ arguments: [String], timeout: Double = 30) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let closing = wisp_posix_spawn_file_actions_addclosefrom(&actions, 3)
        guard closing == 0 else {
            throw WispError(.processFailed, "\(executable): cannot prepare its descriptors: \(String(cString: strerror(closing)))")
        }
        let argv = [executable] + arguments
        var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, &cArguments, environ)
        guard rc == 0 else {
            throw WispError(.processFailed, "\(executable) could not be started: \(String(cString: strerror(rc)))")
        }
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR {
                throw WispError.posix("waitpid", executable, errno: errno)
            }
            if Date() >= deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                throw WispError.timedOut("\(executable) \(arguments.joined(separator: " ")) did not fork into the background within \(Int(timeout)) s")
            }
            usleep(20_000)
        }
        // WIFEXITED / WEXITSTATUS (macros Swift does not import).
        return status & 0x7f == 0 ? (status >> 8) & 0xff : status
    }
}
