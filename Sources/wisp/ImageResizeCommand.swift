import ArgumentParser
import DiskImage
import Foundation
import WispCore

struct ImageResizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resize",
        abstract: "Grow an image's virtual size (raw or qcow2).",
        discussion: "SIZE is absolute (20G) or relative (+5G). Shrinking is refused.")

    @Argument(help: "The image file.") var image: String
    @Argument(help: "New size (20G) or growth (+5G).") var size: String
    @OptionGroup var backing: BackingOptions

    func run() async throws {
        let current = try BackingChain.resolve(path: image, policy: backing.policy).top.virtualSize
        let newSize: UInt64
        if size.hasPrefix("+") {
            let (sum, overflow) = current.addingReportingOverflow(try ByteSize.parse(String(size.dropFirst())))
            guard !overflow else { throw ValidationError("size is too large") }
            newSize = sum
        } else if size.hasPrefix("-") {
            throw ValidationError("shrinking an image is not supported")
        } else {
            newSize = try ByteSize.parse(size)
        }
        try DiskImageFile.resize(path: image, newSize: newSize, policy: backing.policy)
        print("Image resized.")
    }
}
