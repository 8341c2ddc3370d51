import ArgumentParser
import DiskImage
import Foundation
import WispCore

struct ImageInfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show an image's format, sizes, qcow2 features and backing chain.",
        discussion: "Like 'qemu-img info --backing-chain'. Dirty and corrupt qcow2 images are reported, not refused.")

    @Argument(help: "The image file.") var image: String
    @Flag(name: .long, help: "Print JSON instead of text.") var json = false

    func run() async throws {
        let info = try ImageInfo.read(path: image)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(info), as: UTF8.self))
        } else {
            print(info.text)
        }
    }
}
