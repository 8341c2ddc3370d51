import Foundation
import WispCore

/// Finds the host's QEMU binary and OVMF firmware, with one clear sentence when missing.
public enum HostTools {
    public static func qemuExecutable(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let custom = environment["WISP_QEMU"], !custom.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: custom) else {
                throw WispError.notFound("WISP_QEMU=\(custom) is not an executable QEMU")
            }
            return custom
        }
        let path = environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin"] {
            let candidate = "\(dir)/qemu-system-x86_64"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw WispError.notFound("qemu-system-x86_64 is not installed: install it (Debian: apt-get install qemu-system-x86, or run scripts/setup)")
    }

    /// OVMF code and variable-store template, 4M builds first (Debian 12's default).
    public static func ovmf() throws -> (code: String, varsTemplate: String) {
        let pairs = [
            ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
            ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
            ("/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"),
            ("/usr/share/edk2/x64/OVMF_CODE.fd", "/usr/share/edk2/x64/OVMF_VARS.fd"),
        ]
        for (code, vars) in pairs where FileManager.default.fileExists(atPath: code) && FileManager.default.fileExists(atPath: vars) {
            return (code, vars)
        }
        throw WispError.notFound("UEFI firmware (OVMF) is not installed and this image needs it: install it (Debian: apt-get install ovmf)")
    }

    /// `ssh-keygen` / `ssh`, needed for the instance key and readiness.
    public static func openSSH(_ tool: String) throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") + ["/usr/bin"] {
            let candidate = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw WispError.notFound("\(tool) is not installed: install the OpenSSH client (Debian: apt-get install openssh-client)")
    }
}
