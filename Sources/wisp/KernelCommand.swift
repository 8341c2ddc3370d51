import ArgumentParser
import DiskImage
import Foundation
import GuestInspect
import WispKit

struct KernelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel",
        abstract: "Work with the kernels inside a disk image.",
        subcommands: [KernelExtract.self]
    )
}

struct KernelExtract: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Copy out the kernel, initrd and command line the guest would boot (virt-get-kernel).",
        discussion: """
            Picks the entry the guest's own boot loader would boot (GRUB default and grubenv \
            saved_entry, BLS order, extlinux DEFAULT, UKIs) and writes its kernel and initrd under \
            their own file names in DIR, and its full command line to DIR/cmdline. Each file is \
            written atomically. A unified kernel image is taken apart into its .linux and .initrd \
            sections. Use --list to see the entries and --entry to pick another one.
            """)

    @Argument(help: "The disk image (qcow2, raw, ..., an OVA or a Vagrant box).") var image: String
    @Option(name: [.short, .customLong("output")], help: "Directory to write into (created if missing).")
    var output: String?
    @Option(help: "The entry to extract: its number in --list, its id or its title.") var entry: String?
    @Flag(help: "List the boot entries instead of extracting.") var list = false
    @Flag(help: "Print what was written (or the list) as JSON.") var json = false
    @Flag(name: [.customLong("decompress"), .customLong("unwrap-zboot")],
          help: "Write an EFI zboot or gzip-compressed arm64 kernel as the bare Image it wraps, which QEMU -kernel boots whatever its compression.")
    var unwrapZboot = false
    @OptionGroup var backing: BackingOptions

    func validate() throws {
        if !list && output == nil { throw ValidationError("Missing -o DIR (or use --list).") }
    }

    func run() async throws {
        if list {
            let (path, policy) = try ImageArgument.disk(image, policy: backing.policy)
            let report = try GuestInspector(disk: try DiskImageFile.open(path, policy: policy)).inspect()
            if json {
                struct Listing: Encodable { var entries: [BootEntry]; var defaultEntry: Int?; var defaultReason: String }
                try JSONOutput.print(Listing(entries: report.bootEntries, defaultEntry: report.defaultEntry, defaultReason: report.defaultReason))
            } else {
                for (i, e) in report.bootEntries.enumerated() {
                    print("\(i == report.defaultEntry ? "*" : " ")\(i)  \(e.id)  \(e.title)  [\(e.source.rawValue)]")
                }
                print("default: \(report.defaultReason)")
            }
            return
        }
        guard let output else { throw ValidationError("Missing -o DIR.") }
        let (path, policy) = try ImageArgument.disk(image, policy: backing.policy)
        let inspector = try GuestInspector(disk: try DiskImageFile.open(path, policy: policy))
        let result = try KernelExtraction.extract(from: inspector, to: output, entry: entry, unwrapZboot: unwrapZboot)
        if json {
            try JSONOutput.print(result)
        } else {
            print("kernel:  \(result.kernelPath)")
            if let i = result.initrdPath { print("initrd:  \(i)") }
            print("cmdline: \(result.commandLinePath): \(result.commandLine)")
        }
    }
}
