import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// Every VHD, VHDX and VDI variant qemu-img writes must read byte-identical to
/// `qemu-img convert -O raw`.
@Suite struct VhdReadTests {
    static func fill(_ path: String, format: String) throws {
        try Qemu.io(path, format: format,
                    "write -P 0xab 0 1M",
                    "write -P 0xcd 1536 3000",
                    "write -P 0x11 5M 300k",
                    "write -P 0x5a 9437000 70000",
                    "write -P 0x77 30M 4k")
    }

    @Test(arguments: [("vpc", "subformat=dynamic"), ("vpc", "subformat=fixed"),
                      ("vpc", "subformat=dynamic,force_size=on"), ("vpc", "subformat=fixed,force_size=on"),
                      ("vhdx", "subformat=dynamic"), ("vhdx", "subformat=fixed"),
                      ("vhdx", "subformat=dynamic,block_size=1M"), ("vhdx", "subformat=dynamic,block_size=32M"),
                      ("vhdx", "subformat=dynamic,log_size=4M"),
                      ("vdi", "static=off"), ("vdi", "static=on")])
    func qemuVariants(format: String, options: String) throws {
        let dir = try TemporaryDirectory()
        let image = dir.file("v.\(format)")
        try Qemu.img("create", "-f", format, "-o", options, image, "40M")
        try Self.fill(image, format: format)
        try Qemu.expectReadsIdentical(image, in: dir, qemuFormat: format)
        let expected: ImageFormat = format == "vpc" ? .vhd : ImageFormat(rawValue: format) ?? .raw
        #expect(try DiskImageFile.probe(image) == expected)
    }

    /// Odd sizes: qemu-img rounds VHDs to a CHS geometry unless force_size; Wisp must
    /// choose the same virtual size qemu does, whichever creator wrote the image.
    @Test(arguments: ["1000000", "3333333", "127M", "1G", "8000M", "130000M"])
    func oddSizes(size: String) throws {
        let dir = try TemporaryDirectory()
        for options in ["subformat=dynamic", "subformat=dynamic,force_size=on"] {
            let image = dir.file("odd.vhd")
            unlink(image)
            try Qemu.img("create", "-f", "vpc", "-o", options, image, size)
            let info = try Qemu.imgArgs(["info", "--output=json", "-f", "vpc", image])
            let json = try JSONSerialization.jsonObject(with: Data(info.stdoutText.utf8)) as? [String: Any]
            let qemuSize = (json?["virtual-size"] as? NSNumber)?.uint64Value
            #expect(try DiskImageFile.open(image).size == qemuSize, "\(size) \(options)")
        }
    }

    @Test(arguments: ["vpc", "vhdx", "vdi"])
    func realData(format: String) throws {
        guard let source = ProcessInfo.processInfo.environment["WISP_TEST_IMAGE"], !source.isEmpty else { return }
        let dir = try TemporaryDirectory()
        let image = dir.file("real.\(format)")
        try Qemu.img("convert", "-O", format, source, image)
        try Qemu.expectReadsIdentical(image, in: dir)
    }
}
