import ArgumentParser
import DiskImage
import Foundation
import WispCore

struct ImageInfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show an image's format, sizes, qcow2 features, backing chain, partitions and filesystems.",
        discussion: """
            Like 'qemu-img info --backing-chain', plus the partition table and filesystems \
            inside (skip them with --no-partitions). Dirty and corrupt qcow2 images are \
            reported, not refused. An ISO image is named with its volume id, its El Torito \
            boot catalog (BIOS and UEFI entries, the EFI system partition image) and, when \
            isohybrid, the MBR or GPT in its first sectors.
              wisp image info disk.qcow2
              wisp image info --json debian-live-12-amd64.iso
            """)

    @Argument(help: "The image file.") var image: String
    @Flag(name: .long, help: "Print JSON instead of text.") var json = false
    @Flag(name: .customLong("partitions"), inversion: .prefixedNo,
          help: "Also read the partition table and filesystems inside the image.")
    var partitions = true
    @OptionGroup var backing: BackingOptions

    func run() async throws {
        // An OVA or box: the info of its boot disk in the cache.
        let (path, policy) = try ImageArgument.disk(image, policy: backing.policy)
        let info = try ImageInfo.read(path: path, policy: policy)
        let guest = partitions ? GuestDiskInfo(path: path, policy: policy) : nil
        if json {
            if let guest {
                try JSONOutput.print(ImageInfoWithGuest(info: info, guest: guest))
            } else {
                try JSONOutput.print(info)
            }
        } else {
            print(info.text)
            if let guest { print(guest.textLines.joined(separator: "\n")) }
        }
    }
}
