import WispCore

/// A systemd system credential for the guest (systemd.system-credentials(7)): how Wisp
/// provisions an image that has no cloud-init. systemd 252 and later import credentials
/// from SMBIOS type 11 strings (`io.systemd.credential.binary:NAME=BASE64`) and from QEMU
/// fw_cfg entries under `opt/io.systemd.credentials/`; `systemd-tmpfiles` then consumes
/// `ssh.authorized_keys.root` and `tmpfiles.extra`.
///
/// The value lives in an owner-only file in the instance directory, never in the spec or on
/// QEMU's command line: a credential may be a private host key, and QEMU's argv is readable
/// by every local user in /proc.
public struct SystemdCredential: Sendable, Codable, Equatable {
    /// The credential name, as systemd spells it (`ssh.authorized_keys.root`).
    public var name: String
    /// The file holding the value (written owner-only by whoever made the spec).
    public var file: String

    public init(name: String, file: String) throws {
        try Self.validate(name: name)
        self.name = name
        self.file = file
    }

    /// systemd accepts credential names that are valid file names; Wisp also keeps them to
    /// characters that need no quoting in a QEMU option value (`-fw_cfg name=...`).
    public static func validate(name: String) throws {
        let allowed = name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x2D || c == 0x5F
        }
        guard !name.isEmpty, name.utf8.count <= 255, allowed, name != ".", name != ".." else {
            throw WispError.invalidArgument("systemd credential name \"\(name)\": expected 1 to 255 of A-Z a-z 0-9 . - _")
        }
    }
}

/// How credentials reach the guest on a given board and boot method.
public enum CredentialTransport: Sendable, Equatable {
    /// One SMBIOS type 11 table file (`-smbios file=`), read by systemd from
    /// /sys/firmware/dmi/entries/11-*/raw.
    case smbios
    /// One `-fw_cfg name=opt/io.systemd.credentials/NAME,file=PATH` per credential, for a
    /// guest that sees no SMBIOS (an arm64 kernel booted directly, without firmware).
    case firmwareConfig
}
