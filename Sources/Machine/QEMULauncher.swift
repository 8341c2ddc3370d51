#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Foundation
import WispCore

/// Starts QEMU in the background and tracks it through its pid file.
///
/// A sandboxed QEMU cannot `-daemonize` (its seccomp filter denies the fork and setsid that
/// takes), so Wisp starts it in a session of its own with stdin on /dev/null and its
/// output in an owner-only log, and counts it started once its QMP monitor answers (QEMU
/// serves QMP only after every device, socket and port forward is set up). If QEMU exits
/// first, its log is the error: a port in use or a bad image is reported as with
/// `-daemonize`. Without the sandbox, QEMU's own `-daemonize` is used.
public enum QEMULauncher {
    public static func launch(_ commandLine: QEMUCommandLine, startTimeout: Double = 60) throws -> Int32 {
        try? FileManager.default.removeItem(atPath: commandLine.paths.pidFile)
        if let serial = commandLine.spec.smbiosSerial {
            let table = SMBIOSSystemTable(serialNumber: serial, uuid: systemUUID(for: commandLine.name))
            try AtomicOutput.write(try table.encoded(), to: commandLine.paths.smbiosTable, permissions: 0o600)
        }
        try writeCredentialTable(commandLine)
        guard commandLine.daemonize else { return try launchInSession(commandLine, timeout: startTimeout) }
        let (status, stderrText) = try spawnAndWait(commandLine.executable, commandLine.arguments)
        guard status == 0 else {
            throw WispError.processFailed("QEMU failed to start (exit \(status)): \(explain(stderrText))", status: status)
        }
        guard let pid = readPID(commandLine.paths.pidFile) else {
            throw WispError(.engineFailed, "QEMU started but wrote no pid file at \(commandLine.paths.pidFile): \(stderrText)")
        }
        return pid
    }

    /// The SMBIOS type 11 table with the spec's credentials, read from their owner-only
    /// files now (so a value changed between boots, such as rotated keys, is what boots).
    public static func writeCredentialTable(_ commandLine: QEMUCommandLine) throws {
        let spec = commandLine.spec
        guard !spec.credentials.isEmpty, let path = commandLine.paths.smbiosOEMTable,
              QEMUCommandLine.credentialTransport(board: commandLine.board, boot: spec.boot) == .smbios else { return }
        var strings: [String] = []
        for credential in spec.credentials {
            guard let value = FileManager.default.contents(atPath: credential.file) else {
                throw WispError.notFound("\(credential.file): the value of the systemd credential \(credential.name) is missing")
            }
            strings.append(try SMBIOSOEMStringsTable.credentialString(name: credential.name, value: Array(value)))
        }
        try AtomicOutput.write(try SMBIOSOEMStringsTable(strings: strings).encoded(), to: path, permissions: 0o600)
    }

    /// A stable, never-zero UUID for a machine name (version 4 and variant bits set): systemd
    /// may derive the guest's machine id from it.
    static func systemUUID(for name: String) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(Array("wisp-smbios-uuid:\(name)".utf8))
        var bytes = Array(hasher.finalize().prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return bytes
    }

    static func launchInSession(_ commandLine: QEMUCommandLine, timeout: Double) throws -> Int32 {
        let logPath = commandLine.paths.qemuLog
        // Everything QEMU creates (QMP and console sockets, the serial log) is owner-only.
        let pid = try SessionSpawn.start(commandLine.executable, commandLine.arguments, logPath: logPath, truncateLog: true)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let exitCode: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                throw WispError.processFailed("QEMU failed to start (exit \(exitCode)): \(explain(log.trimmingCharacters(in: .whitespacesAndNewlines)))",
                                              status: exitCode)
            }
            if let qmp = try? QMPClient(socketPath: commandLine.paths.qmpSocket, timeout: 2), (try? qmp.status()) != nil {
                return pid
            }
            guard Date() < deadline else {
                _ = kill(pid, SIGKILL)
                _ = waitpid(pid, nil, 0)
                throw WispError.timedOut("QEMU did not answer on its QMP socket within \(Int(timeout)) s (log: \(logPath))")
            }
            usleep(20_000)
        }
    }

    /// posix_spawn + waitpid rather than Foundation's Process: the daemon QEMU forks keeps
    /// running after its parent exits, and we must reap exactly the parent and read its
    /// stderr without waiting for the daemon to close the pipe.
    static func spawnAndWait(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        markInheritedDescriptorsCloseOnExec()
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw WispError.posix("pipe", executable, errno: errno) }
        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        close(pipeFDs[1])
        guard rc == 0 else {
            close(pipeFDs[0])
            throw WispError(.failed, "could not start \(executable): \(String(cString: strerror(rc)))")
        }
        let readFD = pipeFDs[0]
        defer { close(readFD) }
        _ = fcntl(readFD, F_SETFL, fcntl(readFD, F_GETFL) | O_NONBLOCK)
        var output = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 8192)
        func drain() {
            while output.count < 1 << 20 {
                let n = chunk.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                output += chunk[0..<n]
            }
        }
        var status: Int32 = 0
        while true {
            var pfd = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, 100)
            drain()
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { break }
        }
        drain()
        let exitCode: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exitCode, String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The QEMU daemon must hold none of our descriptors: a caller waiting for EOF on a pipe
    /// or socket it gave us (a shell's `$(wisp run ...)`, Foundation's Process watching its
    /// child) would otherwise wait for as long as the VM runs.
    static func markInheritedDescriptorsCloseOnExec() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for name in names {
            guard let fd = Int32(name), fd > 2 else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 && flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    /// QEMU's messages for the common failures, with the cause said plainly first.
    static func explain(_ stderr: String) -> String {
        if stderr.contains("Could not set up host forwarding rule") {
            return "a forwarded host port is already in use or not allowed (\(stderr))"
        }
        if stderr.contains("Could not access KVM kernel module") || stderr.contains("failed to initialize kvm") {
            return "KVM is not usable on this host, use --accel tcg (\(stderr))"
        }
        return stderr.isEmpty ? "no message" : stderr
    }

    public static func readPID(_ path: String) -> Int32? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 else { return nil }
        return pid
    }

    /// True when `pid` is alive and is a QEMU (a recycled pid after a host reboot is not ours).
    public static func isQEMU(pid: Int32) -> Bool {
        // A QEMU this process started (no -daemonize) is its child: reap it if it exited, so
        // no zombie stays behind while a long-lived caller (a test run) goes on.
        _ = waitpid(pid, nil, WNOHANG)
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let first = cmdline.split(separator: 0).first.map { String(decoding: $0, as: UTF8.self) } ?? ""
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            // A zombie (state Z) is dead for our purposes.
            let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).prefix(1)
            if state == "Z" { return false }
        }
        return first.contains("qemu")
    }

    /// Sends `signal` and waits up to `timeout` seconds for the process to go away.
    @discardableResult
    public static func terminate(pid: Int32, signal: Int32 = SIGKILL, timeout: Double = 10) -> Bool {
        _ = kill(pid, signal)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !isQEMU(pid: pid) { return true }
            usleep(50_000)
        }
        return !isQEMU(pid: pid)
    }
}
