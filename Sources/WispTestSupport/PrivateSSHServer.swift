import Foundation
import WispCore

/// A private OpenSSH server on 127.0.0.1 for tests that need "another host" reached over
/// SSH: its own config, host key and authorized_keys in a temporary directory,
/// `sshd -D -e` as a child process (logging at DEBUG to a file, so a test can read what was
/// forwarded through it), stopped by `stop()`. Root only (sshd's privilege separation).
public final class PrivateSSHServer: @unchecked Sendable {
    public let port: UInt16
    /// The private key authorized to log in as root.
    public let clientKey: String
    public let logFile: String
    /// sshd's pid. Spawned with posix_spawn, not Foundation's Process: sshd closes every
    /// descriptor above 2 at start, including the one Foundation watches for a child's exit,
    /// and Foundation then blocks its process thread in waitpid on sshd (every later Process
    /// in the test hangs unreaped).
    let pid: pid_t

    public init(in directory: TemporaryDirectory) throws {
        guard getuid() == 0 else { throw WispError(.unsupported, "a private sshd needs root") }
        let sshd = "/usr/sbin/sshd"
        guard FileManager.default.isExecutableFile(atPath: sshd) else {
            throw WispError.notFound("\(sshd) is not installed (scripts/setup installs openssh-server)")
        }
        // sshd refuses to start without its privilege separation directory.
        try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o755])
        let hostKey = directory.file("sshd_host_ed25519")
        clientKey = directory.file("client_ed25519")
        for key in [hostKey, clientKey] {
            try ToolRunner.check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key])
        }
        try FileManager.default.copyItem(atPath: clientKey + ".pub", toPath: directory.file("authorized_keys"))
        port = try TestRegistry.freePort()
        let config = directory.file("sshd_config")
        try """
        Port \(port)
        ListenAddress 127.0.0.1
        HostKey \(hostKey)
        AuthorizedKeysFile \(directory.file("authorized_keys"))
        PidFile none
        PermitRootLogin prohibit-password
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        UsePAM no
        StrictModes no
        AllowTcpForwarding yes
        LogLevel DEBUG

        """.write(toFile: config, atomically: true, encoding: .utf8)
        logFile = directory.file("sshd.log")
        FileManager.default.createFile(atPath: logFile, contents: nil)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, logFile, O_WRONLY | O_APPEND, 0)
        let argv = [sshd, "-D", "-e", "-f", config]
        var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var child: pid_t = 0
        let status = posix_spawn(&child, sshd, &actions, nil, &cArguments, environ)
        guard status == 0 else { throw WispError(.processFailed, "\(sshd) could not be started: errno \(status)") }
        pid = child
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                reaped = true
                throw WispError(.processFailed, "sshd exited (wait status \(status)) at start: \(log)")
            }
            if log.contains("Server listening on 127.0.0.1 port \(port)") { return }
            usleep(50_000)
        }
        stop()
        throw WispError(.timedOut, "sshd did not listen on 127.0.0.1:\(port) within 20 s: \(log)")
    }

    public var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    private let stopped = NSLock()
    private var reaped = false

    public func stop() {
        stopped.lock()
        defer { stopped.unlock() }
        guard !reaped else { return }
        reaped = true
        kill(pid, SIGTERM)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }

    deinit { stop() }
}
