import ArgumentParser
import DiskImage
import WispCore
import WispKit

struct ImageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Inspect, create, convert and resize disk images (qemu-img's everyday verbs).",
        subcommands: []
    )
}
