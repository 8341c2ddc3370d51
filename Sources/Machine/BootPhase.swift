/// How far a boot has come, read from the serial console log. Used for the progress line,
/// for the KVM sign-of-life check, and in failure messages.
public enum BootPhase: Int, Sendable, Comparable, CustomStringConvertible {
    case starting = 0, firmware, kernel, cloudInit, ssh, ready

    public static func < (a: BootPhase, b: BootPhase) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .starting: "starting"
        case .firmware: "firmware"
        case .kernel: "kernel"
        case .cloudInit: "cloud-init"
        case .ssh: "ssh"
        case .ready: "ready"
        }
    }

    /// The furthest phase the serial log shows. Any output at all proves the CPU runs.
    public static func detect(in log: String) -> BootPhase {
        if log.contains("Cloud-init v.") || log.contains("cloud-init[") { return .cloudInit }
        if log.contains("Linux version") || log.contains("[    0.0") { return .kernel }
        if !log.isEmpty { return .firmware }
        return .starting
    }

    /// The last `count` non-empty lines of a serial log, control characters removed, for
    /// error messages.
    /// systemd's line for an SSH server that failed to start ("[FAILED] Failed to start
    /// ssh.service - OpenBSD Secure Shell server." on Debian, sshd.service on Fedora), or nil.
    public static func sshServiceFailure(in log: String) -> String? {
        for line in log.split(separator: "\n").reversed() where line.contains("Failed to start") {
            if ["ssh.service", "sshd.service", "Secure Shell", "OpenSSH"].contains(where: { line.contains($0) }) {
                return String(line).trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
        return nil
    }

    public static func tail(of log: String, lines count: Int = 15) -> String {
        let cleaned = log.unicodeScalars.filter { $0 == "\n" || $0 == "\t" || ($0.value >= 0x20 && $0.value != 0x7F) }
        let lines = String(String.UnicodeScalarView(cleaned)).split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        return lines.suffix(count).joined(separator: "\n")
    }
}
