import DiskImage
import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import WispKit

/// VMDK, VHD, VHDX and VDI bases become one cached qcow2 for QEMU: judged by qemu-img
/// (compare with the original read by QEMU's own driver, check of the qcow2), converted
/// once, converted again when the image changes.
@Suite struct ForeignFormatCacheTests {
    @Test(arguments: [("vmdk", "subformat=monolithicSparse"), ("vmdk", "subformat=twoGbMaxExtentSparse"),
                      ("vpc", "subformat=dynamic"), ("vhdx", "subformat=dynamic"), ("vdi", "static=off")])
    func foreignBaseBecomesACachedQcow2(format: String, options: String) throws {
        let dir = try TemporaryDirectory("wisp-foreign")
        let image = dir.file("disk.\(format)")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", format, "-o", options, image, "48M"])
        try ToolRunner.check("qemu-io", ["-f", format, "-c", "write -P 0x5a 1M 3M", "-c", "write -P 0xa5 40M 64k", image])
        let chain = try BackingChain.resolve(path: image, policy: .confinedToImageDirectory)
        #expect(ForeignFormatCache.needsConversion(chain))
        let cache = ForeignFormatCache(images: dir.file("images"))
        var lines: [String] = []
        let qcow2 = try cache.qcow2(for: chain) { lines.append($0) }
        #expect(lines.last?.hasPrefix("converting") == true)
        try ToolRunner.check("qemu-img", ["check", "-q", qcow2])
        try ToolRunner.check("qemu-img", ["compare", "-q", "-f", format, "-F", "qcow2", image, qcow2])
        #expect(!ForeignFormatCache.needsConversion(try BackingChain.resolve(path: qcow2, policy: .selfContained)))

        // Unchanged: the same entry, not converted again.
        lines = []
        #expect(try cache.qcow2(for: try BackingChain.resolve(path: image, policy: .confinedToImageDirectory)) { lines.append($0) } == qcow2)
        #expect(lines.last?.hasPrefix("using the qcow2 converted earlier") == true)

        // Written in place (new mtime and content): a new entry with the new bytes.
        usleep(10_000)
        try ToolRunner.check("qemu-io", ["-f", format, "-c", "write -P 0x77 0 64k", image])
        let again = try cache.qcow2(for: try BackingChain.resolve(path: image, policy: .confinedToImageDirectory)) { _ in }
        #expect(again != qcow2)
        try ToolRunner.check("qemu-img", ["compare", "-q", "-f", format, "-F", "qcow2", image, again])
    }

    @Test func qcow2AndRawChainsAreLeftAlone() throws {
        let dir = try TemporaryDirectory("wisp-foreign")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "raw", dir.file("base.raw"), "8M"])
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", dir.file("top.qcow2")])
        #expect(!ForeignFormatCache.needsConversion(try BackingChain.resolve(path: dir.file("top.qcow2"), policy: .confinedToImageDirectory)))
        // A qcow2 overlay on a VMDK base is converted as a whole.
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "vmdk", dir.file("base.vmdk"), "8M"])
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "base.vmdk", "-F", "vmdk", dir.file("over.qcow2")])
        #expect(ForeignFormatCache.needsConversion(try BackingChain.resolve(path: dir.file("over.qcow2"), policy: .confinedToImageDirectory)))
    }
}
