import Foundation
import WispCore
import Machine

/// How Wisp talks to a guest over SSH: the per-instance key, strict host key checking against
/// the host key Wisp generated and handed in through cloud-init (`known_hosts` in the instance
/// directory, under an alias so the forwarded port may change between boots).
public struct InstanceSSH: Sendable {
    public let record: InstanceRecord
    public let files: InstanceFiles

    public init(record: InstanceRecord, files: InstanceFiles) {
        self.record = record
        self.files = files
    }

    public var hostAlias: String { "wisp-\(record.name)" }

    /// The SSH login to the remote libvirt host the guest's forward is reached through; nil
    /// for a guest on this machine. Throws for a remote host reached without SSH.
    public func jump() throws -> LibvirtSSHJump? {
        guard let placement = LibvirtEngine.placement(files) else { return nil }
        return try LibvirtSSHJump.forURI(placement.uri)
    }

    /// `ssh` options and destination, without the command.
    public func arguments(tty: Bool = false, connectTimeout: Int = 10) -> [String] {
        var args = [
            "-i", files.privateKey,
            "-o", "IdentitiesOnly=yes",
            "-o", "UserKnownHostsFile=\(files.knownHosts)",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "HostKeyAlias=\(hostAlias)",
            "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=\(connectTimeout)",
            "-o", "LogLevel=ERROR",
            "-p", String(record.sshPort),
        ]
        // A guest of a remote libvirt host: its forward is on that host's 127.0.0.1.
        if let jump = try? jump() {
            args += ["-o", jump.proxyCommandOption(ssh: (try? HostCommands.ssh()) ?? "ssh")]
        }
        if tty { args.append("-t") }
        args.append("\(record.user)@127.0.0.1")
        return args
    }

    /// Runs `command` once (quietly); true when it exits 0. Used as the readiness probe, and
    /// for `sync` before a suspend. Killed after `limit` seconds: a guest that took the login
    /// but never finishes the command (stalled I/O under `sync`) must not hold the caller, and
    /// the instance lock it may hold, forever.
    public func probe(_ command: String = "true", limit: Double = 60) -> Bool {
        guard let ssh = try? HostCommands.ssh() else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ssh)
        process.arguments = probeArguments() + ["--", command]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return false }
        let watchdog = Self.watchdog(process, seconds: limit)
        process.waitUntilExit()
        watchdog.cancel()
        return process.terminationStatus == 0
    }

    /// A probe's ssh arguments: a 5 s connect timeout and keep-alives, so a guest that stops
    /// answering mid-session is given up on in about 15 s rather than by TCP's own timeouts.
    private func probeArguments() -> [String] {
        var args = arguments(connectTimeout: 5)
        args.insert(contentsOf: ["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"], at: args.count - 1)
        return args
    }

    /// SIGKILL for `process` if it still runs after `seconds` (cancel it once it has exited).
    /// A thread of its own, not a dispatch timer: when the global queue's few threads are all
    /// blocked (in commands like this one, on a loaded 2-core host) a timer would never fire.
    private static func watchdog(_ process: Process, seconds: Double) -> ProcessWatchdog {
        ProcessWatchdog(process, seconds: seconds)
    }

    /// How a restored guest's clock was set (its clock stood still while it was saved).
    public enum ClockSetting: Sendable, Equatable {
        case set
        /// SSH answered but `sudo date` failed (a user without password-less sudo).
        case refused
        /// No SSH login into this guest at all (a console-only live ISO): nothing set its
        /// clock, which is behind by the time it was saved.
        case noLogin
    }

    /// One login that is both the readiness probe of a restored guest and its clock fix:
    /// the guest says when its command runs, and only then is the host's time sent, so the
    /// seconds an SSH handshake takes under emulation are not lost. Nil when SSH does not
    /// answer (yet).
    public func probeSettingClock() -> ClockSetting? {
        guard let ssh = try? HostCommands.ssh() else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ssh)
        let script = "echo wisp-clock; read t; if sudo -n date -u -s \"@$t\" >/dev/null 2>&1; then echo set; else echo refused; fi"
        process.arguments = probeArguments() + ["--", script]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        // A `sudo` or shell that stalls would block the read below for good.
        let watchdog = Self.watchdog(process, seconds: 60)
        defer { watchdog.cancel() }
        var text = ""
        var sentTime = false
        while true {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            if !sentTime, text.contains("wisp-clock\n") {
                let now = Date().timeIntervalSince1970
                input.fileHandleForWriting.write(Data(String(format: "%.3f\n", now).utf8))
                try? input.fileHandleForWriting.close()
                sentTime = true
            }
            if text.count > 4096 { break }
        }
        if !sentTime { try? input.fileHandleForWriting.close() }
        process.waitUntilExit()
        guard process.terminationStatus == 0, sentTime else { return nil }
        return text.contains("\nset") ? .set : .refused
    }

    /// Runs `command` with our stdin/stdout/stderr and returns its exit status (ssh's 255
    /// when the connection itself failed).
    public func run(_ command: [String], tty: Bool) throws -> Int32 {
        _ = try jump()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try HostCommands.ssh())
        process.arguments = arguments(tty: tty) + Self.remoteCommand(command)
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// ssh joins its words with spaces for the remote shell. One word is a shell command line
    /// as it stands (`wisp ssh vm -- 'ls | wc -l'`); several words are an argv, each quoted so
    /// it arrives as given (`-- sh -c 'exit 3'` exits 3).
    public static func remoteCommand(_ command: [String]) -> [String] {
        if command.isEmpty { return [] }
        if command.count == 1 { return ["--", command[0]] }
        return ["--"] + command.map(shellQuote)
    }

    public static func shellQuote(_ word: String) -> String {
        if !word.isEmpty, word.allSatisfy({ $0.isLetter || $0.isNumber || "-_=./:,@%+".contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Runs ssh-keygen to make an ed25519 key pair at `path` (private key 0600).
    static func generateKey(at path: String, comment: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try HostCommands.sshKeygen())
        process.arguments = ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw WispError(.failed, "ssh-keygen could not create \(path): \(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
        }
        chmod(path, 0o600)
    }
}

/// Kills a process that outlives its deadline, from a dedicated thread (see `watchdog`).
final class ProcessWatchdog: @unchecked Sendable {
    private let condition = NSCondition()
    private var cancelled = false

    init(_ process: Process, seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        let thread = Thread { [self] in
            condition.lock()
            while !cancelled && condition.wait(until: deadline) {}
            let fire = !cancelled
            condition.unlock()
            if fire, process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        thread.start()
    }

    func cancel() {
        condition.lock()
        cancelled = true
        condition.signal()
        condition.unlock()
    }
}
