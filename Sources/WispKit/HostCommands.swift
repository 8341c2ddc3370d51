import Foundation
import WispCore

/// The host's OpenSSH client tools: `ssh-keygen` makes the instance keys, `ssh` is the
/// readiness probe and `wisp ssh`. Found on PATH (or /usr/bin), with one clear sentence
/// when missing.
enum HostCommands {
    static func ssh() throws -> String { try openSSH("ssh") }
    static func sshKeygen() throws -> String { try openSSH("ssh-keygen") }

    /// Another host tool (`tar` for `wisp cp`).
    static func tool(_ name: String) throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").map(String.init) + ["/usr/bin", "/bin"] {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw WispError.notFound("\(name) is not installed on this host")
    }

    private static func openSSH(_ tool: String) throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").map(String.init) + ["/usr/bin"] {
            let candidate = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw WispError.notFound("\(tool) is not installed: install the OpenSSH client (Debian: apt-get install openssh-client)")
    }
}
