import ArgumentParser
import DiskImage
import Foundation
import WispCore
import WispKit

struct ImageInfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show an image's format, sizes, qcow2 features, backing chain and partitions.",
        discussion: """
            Like 'qemu-img info --backing-chain', plus the partition table and filesystems \
            inside (skip them with --no-partitions). Dirty and corrupt qcow2 images are \
            reported, not refused.
            """)

    @Argument(help: "The image file.") var image: String
    @Flag(name: .long, help: "Print JSON instead of text.") var json = false
    @Flag(name: .long, inversion: .prefixedNo, help: "Also read the partition table and filesystems.")
    var partitions = true

    func run() async throws {
        let info = try ImageInfo.read(path: image)
        // The inside of the disk is extra information: an empty or unpartitioned image is fine.
        let disk = partitions ? (try? GuestDisk(path: image))?.summary : nil
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            guard var object = try JSONSerialization.jsonObject(with: encoder.encode(info)) as? [String: Any] else {
                throw WispError(.failed, "\(image): could not encode the image information")
            }
            if let disk {
                object["disk"] = try JSONSerialization.jsonObject(with: encoder.encode(disk))
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(info.text)
            if let disk {
                print("")
                print(disk.textLines.joined(separator: "\n"))
            }
        }
    }
}
