import Foundation
import ArgumentParser
import FileSystems
import GuestInspect
import WispCore
import WispKit

struct FSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fs",
        abstract: "List, print and copy files inside a disk image, without booting it (virt-ls, virt-cat).",
        discussion: """
        IMAGE is any image Wisp reads (raw, qcow2, ..., an OVA or a Vagrant box), or the name \
        of a stopped instance (its disk as the guest left it; a running one is refused, as \
        its disk changes under the reader: use wisp cp NAME:PATH there). Paths are the guest's: Wisp finds \
        the OS root and mounts every filesystem of its /etc/fstab it can read on top (a \
        separate /boot, the ESP on /boot/efi, /home, btrfs subvolumes), so paths and \
        symlinks resolve across them as in the running guest. An ISO image (plain or isohybrid) \
        is read as its ISO 9660 tree. A disk without an OS root is read from its only filesystem. --partition reads one filesystem on its own, from \
        its top level, with no mounts.

        Examples:
          wisp fs ls fedora.qcow2 /boot/efi/EFI       # the ESP, as the guest mounts it
          wisp fs cat fedora.qcow2 /etc/os-release    # the root subvolume's file
          wisp fs ls fedora.qcow2 / --partition 3     # the btrfs top level: home, root
          wisp fs get web /var/log/syslog -o .        # from the stopped instance web
          wisp fs ls debian-live.iso /live            # an ISO's files (Rock Ridge, Joliet)
        """,
        subcommands: [FSList.self, FSCat.self, FSGet.self]
    )
}

/// A `--partition` value, parsed by `DeviceSpec` (a number, label, UUID, PARTUUID,
/// PARTLABEL, KEY=value, /dev/disk/by-*/NAME or /dev/vdaN).
struct PartitionSelector: ExpressibleByArgument {
    let spec: DeviceSpec

    init?(argument: String) {
        guard let spec = try? DeviceSpec(selector: argument) else { return nil }
        self.spec = spec
    }
}

/// The image and the filesystem inside it, shared by every `wisp fs` verb.
struct FSImageOptions: ParsableArguments {
    @Argument(help: "The disk image, or the name of a stopped instance (its overlay and base).") var image: String

    @Option(name: .long, help: ArgumentHelp(
        "Read this one filesystem alone, without the guest's mounts: a partition number, a filesystem label or UUID, a PARTUUID or a PARTLABEL (LABEL=, UUID=, PARTUUID=, PARTLABEL= force one kind), /dev/disk/by-uuid/... or /dev/vdaN.",
        valueName: "N|LABEL|UUID"))
    var partition: PartitionSelector?

    @OptionGroup var backing: BackingOptions

    /// The guest's tree, or the selected filesystem raw.
    func openFileSystem() throws -> any FileSystem {
        // An instance's name reads its disk (stopped instances only), unless a file has that name.
        let instanceDisk = FileManager.default.fileExists(atPath: image) ? nil : try InstanceDiskReader.disk(ofInstance: image)
        let (path, policy) = try instanceDisk ?? ImageArgument.disk(image, policy: backing.policy)
        let disk = try GuestDisk(path: path, policy: policy)
        if let partition { return try disk.fileSystem(selectedBy: partition.spec) }
        return try disk.guestTree()
    }
}
