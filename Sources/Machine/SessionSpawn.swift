#if canImport(Glibc)
import Glibc
#endif
import CLinux
import WispCore

/// How Wisp starts the processes that outlive a command (QEMU, virtiofsd): in a session of
/// their own, so a terminal's Ctrl-C or hang-up never reaches them; stdin from /dev/null and
/// output to an owner-only log; none of Wisp's descriptors inherited; and under umask 077, so
/// every socket and file they create is owner-only (posix_spawn has no umask attribute).
enum SessionSpawn {
    /// Returns the child's pid. `truncateLog` starts the log afresh (QEMU's, per boot);
    /// otherwise output is appended (one log for a folder's daemons across boots).
    static func start(_ executable: String, _ arguments: [String], logPath: String, truncateLog: Bool) throws -> pid_t {
        let logFD = open(logPath, O_WRONLY | O_CREAT | O_CLOEXEC | (truncateLog ? O_TRUNC : O_APPEND), 0o600)
        guard logFD >= 0 else { throw WispError.posix("open", logPath, errno: errno) }
        defer { close(logFD) }
        _ = fchmod(logFD, 0o600)
        QEMULauncher.markInheritedDescriptorsCloseOnExec()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, logFD, 1)
        posix_spawn_file_actions_adddup2(&actions, logFD, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Without this the child would inherit the spawning thread's blocked signals and
        // `wisp run`'s ignored SIGINT/SIGTERM/SIGHUP: QEMU then outlives a plain `kill`.
        let attributeStatus = wisp_posix_spawn_daemon_attributes(&attributes)
        guard attributeStatus == 0 else {
            throw WispError(.io, "could not prepare to start \(executable): \(String(cString: strerror(attributeStatus)))", errno: attributeStatus)
        }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let savedMask = umask(0o077)
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        umask(savedMask)
        guard rc == 0 else { throw WispError(.io, "could not start \(executable): \(String(cString: strerror(rc)))", errno: rc) }
        return pid
    }
}
