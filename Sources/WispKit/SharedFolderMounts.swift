#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GuestInspect
import Machine
import WispCore

/// How a guest mounts its shared folders at every boot: cloud-init's `bootcmd` for images
/// with cloud-init, the `fstab.extra` systemd credential for the others.
///
/// Not cloud-init's `mounts:` module: up to 22.4 (Debian 12) it drops any entry whose
/// device is neither a block device nor `host:/path`, which a virtio-fs tag is. `bootcmd`
/// runs at every boot, early in cloud-init's init stage, before the guest counts as ready.
///
/// Ownership: virtiofsd passes the host's owners and modes through unchanged (no id
/// mapping), so the guest user is given the host user's uid, as Lima does: what the host
/// user owns, the guest user owns, and what the guest user writes is the host user's. Wisp
/// run as root cannot do that (the guest user cannot be uid 0): its guest user then writes
/// where the folder's modes let its uid write, or uses sudo (files written as the guest's
/// root are root's on the host).
enum SharedFolderMounts {
    /// The uid to give the guest user: the host user's when it is an ordinary one
    /// (1000-59999, the range useradd gives people on Debian and Fedora), else nil.
    static func guestUserID(hostUID: uid_t = geteuid()) -> Int? {
        (1000..<60000).contains(hostUID) ? Int(hostUID) : nil
    }

    /// One `bootcmd` line per folder. A mount point under the guest user's home, which
    /// does not exist yet at the first boot's bootcmd (cloud-init creates users later in the
    /// same stage), would be created root-owned and without skeleton files: the user is
    /// created first then, the way cloud-init would, and cloud-init's users module finds it
    /// and adds the keys and sudo rule as it does for any existing user.
    static func bootCommands(_ folders: [SharedFolder], user: String, userID: Int?) -> [String] {
        let q = InstanceSSH.shellQuote
        let home = "/home/\(user)"
        var lines: [String] = []
        if folders.contains(where: { $0.guestPath == home || $0.guestPath.hasPrefix(home + "/") }) {
            let uid = userID.map { " --uid \($0)" } ?? ""
            lines.append("id -u \(q(user)) >/dev/null 2>&1 || useradd --create-home --shell /bin/bash\(uid) \(q(user))")
        }
        for (index, folder) in folders.enumerated() {
            let path = q(folder.guestPath)
            lines.append("mkdir -p \(path) && { mountpoint -q \(path) || mount -t virtiofs -o \(folder.readOnly ? "ro" : "rw") \(SharedFolder.tag(index)) \(path); }")
        }
        return lines
    }

    /// The `fstab.extra` credential (systemd 254 and later: systemd-fstab-generator reads it
    /// at every boot). `nofail`: a folder whose virtiofsd is missing must not stop the boot.
    static func fstabExtra(_ folders: [SharedFolder]) -> String {
        folders.enumerated().map { index, folder in
            "\(SharedFolder.tag(index)) \(fstabEscape(folder.guestPath)) virtiofs \(folder.readOnly ? "ro" : "rw"),nofail 0 0"
        }.joined(separator: "\n") + "\n"
    }

    /// fstab fields are separated by blanks: a space or tab in a path is written in octal.
    static func fstabEscape(_ path: String) -> String {
        var out = ""
        for c in path.unicodeScalars {
            switch c {
            case " ": out += "\\040"
            case "\t": out += "\\011"
            case "\\": out += "\\134"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// The guest's systemd version from its shared library's name
    /// (`/usr/lib/systemd/libsystemd-shared-252.so`, `/usr/lib64/systemd/...-255.5-1.fc40.so`);
    /// nil when it cannot be read.
    static func systemdVersion(_ view: MountView?) -> Int? {
        guard let view else { return nil }
        for directory in ["/usr/lib/systemd", "/usr/lib64/systemd", "/lib/systemd"] {
            guard let entries = try? view.list(directory) else { continue }
            for entry in entries where entry.name.hasPrefix("libsystemd-shared-") && entry.name.hasSuffix(".so") {
                let digits = entry.name.dropFirst("libsystemd-shared-".count).prefix(while: { $0.isNumber })
                if let version = Int(digits) { return version }
            }
        }
        return nil
    }

    /// Why a guest provisioned by credentials cannot mount shared folders, or nil: it needs
    /// systemd 254 for `fstab.extra`. An image whose version cannot be read is let through.
    static func credentialGap(_ view: MountView?, image: String) -> String? {
        guard let version = systemdVersion(view), version < 254 else { return nil }
        return "--mount: \(image) has no cloud-init and systemd \(version), which ignores the fstab.extra credential Wisp mounts shared folders with (systemd 254 or later reads it): use an image with cloud-init or a newer systemd"
    }
}
