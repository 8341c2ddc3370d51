#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore

/// Starts QEMU in the background (its own `-daemonize`: the parent exits once devices,
/// sockets and port forwards are set up, so a port in use or a bad image is reported here
/// with QEMU's stderr) and tracks the daemon through its pid file.
public enum QEMULauncher {
    public static func launch(_ commandLine: QEMUCommandLine) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: commandLine.executable)
        process.arguments = commandLine.arguments
        let errPipe = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errPipe
        process.standardInput = FileHandle.nullDevice
        try? FileManager.default.removeItem(atPath: commandLine.paths.pidFile)
        do { try process.run() } catch {
            throw WispError(.failed, "could not start \(commandLine.executable): \(error)")
        }
        // The daemon inherits the pipe; read only until the parent exits, then what is there.
        process.waitUntilExit()
        let handle = errPipe.fileHandleForReading
        let flags = fcntl(handle.fileDescriptor, F_GETFL)
        _ = fcntl(handle.fileDescriptor, F_SETFL, flags | O_NONBLOCK)
        var stderrBytes = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            stderrBytes += chunk[0..<n]
        }
        try? handle.close()
        let stderrText = String(decoding: stderrBytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0 else {
            throw WispError(.failed, "QEMU failed to start (exit \(process.terminationStatus)): \(explain(stderrText))")
        }
        guard let pid = readPID(commandLine.paths.pidFile) else {
            throw WispError(.failed, "QEMU started but wrote no pid file at \(commandLine.paths.pidFile): \(stderrText)")
        }
        return pid
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
