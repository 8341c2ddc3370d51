import Foundation
import WispCore
import Machine

/// The credentials that provision a guest without cloud-init, written as owner-only files
/// in the instance directory (their values never reach QEMU's argv or the kernel command
/// line).
///
/// - `ssh.authorized_keys.root`: systemd-tmpfiles' provision.conf (systemd 252+) writes it to
///   /root/.ssh/authorized_keys when that file does not exist yet.
/// - `tmpfiles.extra`: tmpfiles lines (systemd-tmpfiles-setup reads them before sshd starts)
///   that replace the image's baked-in ed25519 host key with the instance's own, so
///   `wisp ssh` checks the host key strictly, and that give the NIC a runtime
///   systemd-networkd address matching user-mode networking (in /run: nothing in the image
///   changes; an image managing its network otherwise is not affected).
/// - `system.hostname`: the hostname, for systemd releases that read it (254+); the direct
///   boot command line also carries `systemd.hostname=`.
struct SystemdCredentialSet: Sendable {
    var authorizedKeys: [String]
    var hostKeyPrivate: String
    var hostKeyPublic: String
    var hostname: String
    var macAddress: String
    /// Shared folders to mount (`fstab.extra`, read by systemd 254 and later).
    var sharedFolders: [SharedFolder] = []

    /// Name and value of each credential, in the order they are handed over.
    func values() -> [(name: String, value: [UInt8])] {
        var values: [(name: String, value: [UInt8])] = [
            ("ssh.authorized_keys.root", Array((authorizedKeys.joined(separator: "\n") + "\n").utf8)),
            ("tmpfiles.extra", Array(tmpfilesLines().utf8)),
            ("system.hostname", Array(hostname.utf8)),
        ]
        if !sharedFolders.isEmpty { values.append(("fstab.extra", Array(SharedFolderMounts.fstabExtra(sharedFolders).utf8))) }
        return values
    }

    func tmpfilesLines() -> String {
        func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        let privateKey = hostKeyPrivate.hasSuffix("\n") ? hostKeyPrivate : hostKeyPrivate + "\n"
        let network = """
            [Match]
            MACAddress=\(macAddress)

            [Network]
            Address=\(UserModeNetwork.guestAddress)
            Gateway=\(UserModeNetwork.host)
            DNS=\(UserModeNetwork.dns)

            """
        // f+ replaces the file; ~ says the argument is base64 (a key has newlines).
        return [
            "f+~ /etc/ssh/ssh_host_ed25519_key 0600 root root - \(base64(privateKey))",
            "f+~ /etc/ssh/ssh_host_ed25519_key.pub 0644 root root - \(base64(hostKeyPublic + "\n"))",
            "d /run/systemd/network 0755 root root -",
            "f+~ /run/systemd/network/10-wisp.network 0644 root root - \(base64(network))",
        ].joined(separator: "\n") + "\n"
    }

    /// Writes the files under `directory` (created owner-only) and returns the spec entries.
    func write(to directory: String) throws -> [SystemdCredential] {
        try DirectoryCreation.createDirectories(directory, mode: 0o700)
        return try values().map { credential in
            let path = "\(directory)/\(credential.name)"
            try AtomicOutput.write(credential.value, to: path, permissions: 0o600)
            return try SystemdCredential(name: credential.name, file: path)
        }
    }
}
