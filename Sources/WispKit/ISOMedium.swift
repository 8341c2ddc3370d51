import Foundation
import WispCore
import DiskImage
import FileSystems
import GuestInspect
import Machine

/// An ISO image `wisp run` boots as it is: attached read-only as the board's CD-ROM (never
/// behind an overlay, never written), with a blank disk for an installer to install to.
/// Knows the El Torito entries the firmware could boot and whether the medium's system shows
/// cloud-init, the only way Wisp has to hand a live system its SSH keys.
struct ISOMedium: Sendable {
    /// The ISO file QEMU opens (canonical path).
    var path: String
    /// The El Torito boot catalog, when the medium has one Wisp could read.
    var catalog: ElToritoCatalog?
    /// Where cloud-init was seen on the medium ("listed in /casper/filesystem.manifest"),
    /// or nil when it was not.
    var cloudInitEvidence: String?

    /// The blank disk's size when `--disk-size` is not given: room for a typical install.
    static let defaultDiskSize: UInt64 = 20 << 30

    /// The medium when `chain` is a plain file holding an ISO 9660 filesystem from its first
    /// byte (a CD image, plain or isohybrid); nil for any other image.
    static func detect(_ chain: BackingChain) -> ISOMedium? {
        guard chain.members.count == 1, chain.top.format == .raw,
              let device = try? DiskImageFile.open(chain),
              (try? FileSystemProbe.probe(device)) == .iso9660 else { return nil }
        return ISOMedium(path: chain.top.path)
    }

    /// Reads what the inspector sees of the medium: the boot catalog and cloud-init.
    mutating func read(_ inspector: GuestInspector?) {
        guard let inspector else { return }
        catalog = inspector.guestDisk.isoReport?.bootCatalog
        cloudInitEvidence = Self.cloudInitEvidence(inspector.view)
    }

    /// The package lists live media carry beside their compressed root (Ubuntu's casper
    /// manifests, Debian live's filesystem.packages, archiso's pkglist), read because the
    /// root itself (a squashfs) is not something Wisp reads.
    static let packageLists = ["/casper/filesystem.manifest", "/live/filesystem.packages",
                               "/arch/pkglist.x86_64.txt", "/arch/pkglist.aarch64.txt"]

    /// Where the medium shows cloud-init: its files when the system is the medium's own tree,
    /// else a package list naming the `cloud-init` package. What Wisp cannot see (inside a
    /// squashfs or the initramfs) counts as absent: the message says where it looked.
    static func cloudInitEvidence(_ view: MountView?) -> String? {
        guard let view else { return nil }
        for file in ["/usr/bin/cloud-init", "/etc/cloud/cloud.cfg"] where view.exists(file) {
            return "\(file) is on the medium"
        }
        var lists = packageLists
        // Ubuntu names its layered manifests after the layer (minimal.standard.live.manifest).
        if let casper = try? view.list("/casper") {
            lists += casper.map(\.name).filter { $0.hasSuffix(".manifest") }.sorted().prefix(32).map { "/casper/\($0)" }
        }
        for list in lists {
            guard let bytes = try? view.readFile(list, limit: 16 << 20) else { continue }
            if Self.listsPackage("cloud-init", in: bytes) { return "cloud-init is listed in \(list)" }
        }
        return nil
    }

    /// A package list's line names `package` when its first word is the package itself
    /// ("cloud-init\t23.1-0ubuntu1", "cloud-init 23.4-1").
    static func listsPackage(_ package: String, in bytes: [UInt8]) -> Bool {
        String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline).contains { line in
            line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ":" }).first.map(String.init) == package
        }
    }

    /// The one sentence `wisp run` says when it attaches to the console instead of waiting
    /// for SSH.
    static func noWayInSentence(image: String) -> String {
        noWayInReason(image: image) + ": attaching to the serial console instead of waiting for SSH (--provision cloud-init waits for SSH anyway; --detach returns at once)"
    }

    static func noWayInReason(image: String) -> String {
        "no cloud-init found on \(image) (Wisp looked at the medium's files and package lists; it cannot look inside a squashfs or the initramfs), so there is no way in for SSH keys"
    }

    /// Which firmware boots the CD when its kernel is not booted directly: `--boot uefi` or
    /// `--boot bios` as asked (BIOS only on a board that has one), else UEFI when the catalog
    /// has a UEFI entry, BIOS when it has only a BIOS entry and the board has a BIOS.
    func firmware(asked: BootMode, board: any Board, image: String) throws -> BootMode {
        let platforms = Set(catalog?.entries.map(\.platform) ?? [])
        switch asked {
        case .bios:
            guard board.capabilities.hasLegacyBIOS else {
                throw WispError.usage("--boot bios: the \(board.architecture.rawValue) board has no legacy BIOS (use --boot uefi)")
            }
            return .bios
        case .uefi:
            return .uefi
        case .auto, .direct:
            if platforms.contains(.uefi) { return .uefi }
            if platforms.contains(.bios) && board.capabilities.hasLegacyBIOS { return .bios }
            if platforms.contains(.bios) {
                throw WispError.notFound("\(image) has only a BIOS El Torito entry, and the \(board.architecture.rawValue) board boots UEFI only; Wisp found no kernel on it to boot directly either")
            }
            throw WispError.notFound("\(image) has no El Torito boot entry and no kernel Wisp could find (isolinux, GRUB or loader entries): nothing to boot it with")
        }
    }
}

extension InstanceRecord {
    /// Why `wisp run` attaches to the console of a `consoleOnly` instance, in one sentence.
    public var noWayInSentence: String { ISOMedium.noWayInSentence(image: image) }
}
