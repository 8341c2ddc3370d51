import ArgumentParser
import DiskImage
import Foundation
import WispCore
import WispKit

struct ImageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Inspect, create, convert, resize and check disk images (qemu-img's everyday verbs).",
        discussion: """
            Formats: raw and qcow2 (versions 2 and 3: compressed clusters in deflate or zstd, \
            extended L2 entries, backing chains). Sizes use qemu-img's spelling: 10G, 512M, 64k.
            """,
        subcommands: [ImageInfoCommand.self, ImageCreateCommand.self, ImageConvertCommand.self,
                      ImageResizeCommand.self, ImageCheckCommand.self, ImagePullCommand.self,
                      ImageExportCommand.self]
    )
}

/// Parses qemu-img's format names.
func parseImageFormat(_ text: String) throws -> ImageFormat {
    // qemu-img calls VHD "vpc".
    if text.lowercased() == "vpc" { return .vhd }
    guard let format = ImageFormat(rawValue: text.lowercased()) else {
        throw ValidationError("unknown image format '\(text)' (expected raw, qcow2, vhd (vpc), vhdx, vdi or vmdk)")
    }
    return format
}
