import ArgumentParser
import FileSystems
import WispCore
import WispKit

struct FSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fs",
        abstract: "List, print and copy files inside a disk image, without booting it (virt-ls, virt-cat).",
        discussion: """
        IMAGE is any image Wisp reads (raw, qcow2, ...). Partition tables (GPT, MBR) are read \
        and the filesystem used is the one holding an OS root (it has /etc/os-release), else \
        the only filesystem on the disk; choose another with --partition.
        """,
        subcommands: [FSList.self, FSCat.self, FSGet.self]
    )
}

/// The image and the filesystem inside it, shared by every `wisp fs` verb.
struct FSImageOptions: ParsableArguments {
    @Argument(help: "The disk image.") var image: String

    @Option(name: .long, help: ArgumentHelp(
        "Which filesystem: a partition number, a filesystem label or UUID, a PARTUUID or a PARTLABEL (LABEL=, UUID=, PARTUUID=, PARTLABEL= prefixes force one kind).",
        valueName: "N|LABEL|UUID"))
    var partition: String?

    func openFileSystem() throws -> any FileSystem {
        let disk = try GuestDisk(path: image)
        return try disk.fileSystem(selector: partition)
    }
}
