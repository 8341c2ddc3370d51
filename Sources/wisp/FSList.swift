import ArgumentParser
import Foundation
import WispKit

struct FSList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List a directory inside a disk image (like virt-ls).",
        discussion: """
            PATH is in the guest's tree (its fstab mounts included: /boot, /boot/efi, /home); \
            --partition lists one filesystem raw. Names are sorted; -l adds mode, links, owner, \
            group, size, modification time (UTC) and symlink targets; a mount point shows the \
            root of the filesystem mounted there.

            Examples:
              wisp fs ls ubuntu.qcow2 /boot                # the /boot partition
              wisp fs ls ubuntu.qcow2 /boot --partition 1  # the root fs: its mount point
            """
    )

    @OptionGroup var options: FSImageOptions
    @Argument(help: "The directory (or file) inside the image.") var path: String = "/"
    @Flag(name: .short, help: "Long format, like ls -l.") var long = false
    @Flag(help: "Print JSON (every field, as with -l).") var json = false

    func run() async throws {
        do {
            let fs = try options.openFileSystem()
            let entries = try GuestListing.list(fs, path: path, long: long || json)
            if json {
                try JSONOutput.print(entries)
            } else if long {
                FileOutput.standardOutput(GuestListing.longLines(entries).map { $0 + "\n" }.joined())
            } else {
                FileOutput.standardOutput(entries.map { $0.name + "\n" }.joined())
            }
        }
    }
}
