import ArgumentParser
import DiskImage
import WispCore
import WispKit

struct ImageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Inspect, create, convert and resize disk images (qemu-img's everyday verbs).",
        subcommands: [ImageInfo.self]
    )
}

struct ImageInfo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Show an image's format and size.")

    @Argument(help: "The image file.") var image: String

    func run() async throws {
        let device = try FileBlockDevice(path: image)
        let format = try ImageFormat.probe(device)
        print("format: \(format.rawValue)")
        print("file size: \(ByteSize.format(device.size))")
    }
}
