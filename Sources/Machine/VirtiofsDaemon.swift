#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Foundation
import WispCore

/// The virtiofsd processes that serve an instance's shared folders, one per folder, started
/// before QEMU (which connects to their sockets while it sets up) and gone with it: a
/// virtiofsd exits when its vhost-user peer disconnects, so stopping or killing QEMU ends
/// them too, and nothing of theirs needs tracking between commands.
///
/// Two virtiofsd builds exist: QEMU's C one (Debian 12's /usr/lib/qemu/virtiofsd), which
/// must run as root and has no read-only export, and the Rust one (`--shared-dir`,
/// `--readonly`, `--sandbox none` for unprivileged use). With the C one, `:ro` is enforced
/// by the guest's read-only mount only: root in the guest could remount it writable.
public struct VirtiofsDaemon: Sendable {
    public let executable: String
    /// The Rust virtiofsd (its help mentions `--shared-dir`).
    public let isRustBuild: Bool
    /// The build can export a directory read-only itself.
    public let supportsReadOnly: Bool

    /// `WISP_VIRTIOFSD` when set, else the places distributions install it
    /// (/usr/libexec/virtiofsd: Fedora and the Rust package; /usr/lib/qemu/virtiofsd: Debian's QEMU).
    public static func find(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> VirtiofsDaemon {
        var candidates = ["/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd", "/usr/lib/virtiofsd"]
        candidates += (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map { "\($0)/virtiofsd" }
        if let custom = environment["WISP_VIRTIOFSD"], !custom.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: custom) else {
                throw WispError.notFound("WISP_VIRTIOFSD=\(custom) is not an executable virtiofsd")
            }
            candidates = [custom]
        }
        guard let executable = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw WispError.notFound("--mount needs virtiofsd, which is not installed (Debian 12: apt-get install qemu-system-common; Debian 13, Fedora: apt-get/dnf install virtiofsd)")
        }
        let help = (try? QEMULauncher.spawnAndWait(executable, ["--help"]))?.1 ?? ""
        let rust = help.contains("--shared-dir")
        let daemon = VirtiofsDaemon(executable: executable, isRustBuild: rust, supportsReadOnly: rust && help.contains("--readonly"))
        if !rust && geteuid() != 0 {
            throw WispError(.unsupported, "--mount: \(executable) is QEMU's C virtiofsd, which runs only as root; install the Rust virtiofsd (package virtiofsd) to share folders as an ordinary user")
        }
        return daemon
    }

    public func arguments(for folder: SharedFolder, socket: String) -> [String] {
        if isRustBuild {
            var args = ["--socket-path=\(socket)", "--shared-dir=\(folder.hostPath)", "--cache=auto"]
            if folder.readOnly && supportsReadOnly { args.append("--readonly") }
            // Unprivileged, it cannot build its namespace sandbox without user-namespace maps.
            if geteuid() != 0 { args.append("--sandbox=none") }
            return args
        }
        return ["--socket-path=\(socket)", "-o", "source=\(folder.hostPath)", "-o", "cache=auto"]
    }

    /// Starts one virtiofsd per folder and waits for each socket; returns their pids. On a
    /// failure the ones already started are killed and the log is the error.
    public func start(_ folders: [SharedFolder], socketDirectory: String, logPath: String, timeout: Double = 10) throws -> [Int32] {
        var pids: [Int32] = []
        do {
            for (index, folder) in folders.enumerated() {
                let socket = QEMUCommandLine.sharedFolderSocket(directory: socketDirectory, index: index)
                unlink(socket)
                let pid = try spawn(arguments(for: folder, socket: socket), logPath: logPath)
                pids.append(pid)
                try waitForSocket(socket, pid: pid, folder: folder, logPath: logPath, timeout: timeout)
            }
        } catch {
            Self.terminate(pids)
            throw error
        }
        return pids
    }

    public static func terminate(_ pids: [Int32]) {
        for pid in pids {
            _ = kill(pid, SIGKILL)
            _ = waitpid(pid, nil, 0)
        }
    }

    private func waitForSocket(_ socket: String, pid: Int32, folder: SharedFolder, logPath: String, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let log = ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
                throw WispError.processFailed("virtiofsd could not share \(folder.hostPath): \(log.split(separator: "\n").suffix(3).joined(separator: "; "))",
                                              status: (status >> 8) & 0xff)
            }
            var info = stat()
            if stat(socket, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK { return }
            guard Date() < deadline else {
                throw WispError.timedOut("virtiofsd did not create \(socket) within \(Int(timeout)) s (log: \(logPath))")
            }
            usleep(20_000)
        }
    }

    /// In a session of its own, output appended to the instance's owner-only log, the
    /// socket owner-only: only this user's QEMU may connect (see `SessionSpawn`).
    private func spawn(_ arguments: [String], logPath: String) throws -> Int32 {
        try SessionSpawn.start(executable, arguments, logPath: logPath, truncateLog: false)
    }
}
