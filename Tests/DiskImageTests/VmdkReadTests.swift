import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// Every VMDK variant qemu-img writes must read byte-identical to `qemu-img convert -O raw`.
@Suite struct VmdkReadTests {
    /// A raw source with data, zeros and holes at aligned and unaligned places.
    static func source(in dir: TemporaryDirectory, size: String = "40M") throws -> String {
        let raw = dir.file("src.raw")
        try Qemu.img("create", "-f", "raw", raw, size)
        // Aligned, unaligned and grain-straddling writes; those past the end of a smaller source are left out.
        let writes: [(pattern: String, offset: UInt64, length: UInt64)] = [
            ("0xab", 0, 1 << 20), ("0xcd", 1536, 3000), ("0x11", 5 << 20, 300 << 10),
            ("0x5a", 9_437_000, 70_000), ("0x77", 30 << 20, 4096), ("0x42", 40_894_464, 50_000),
        ]
        let bytes = try ByteSize.parse(size)
        let commands = writes.filter { $0.offset + $0.length <= bytes }.map { "write -P \($0.pattern) \($0.offset) \($0.length)" }
        try Qemu.io(raw, format: "raw", commands)
        return raw
    }

    @Test(arguments: ["monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat", "streamOptimized"])
    func subformats(subformat: String) throws {
        let dir = try TemporaryDirectory()
        let raw = try Self.source(in: dir)
        let image = dir.file("d.vmdk")
        try Qemu.img("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=\(subformat)", raw, image)
        try Qemu.expectReadsIdentical(image, in: dir)
        let chain = try BackingChain.resolve(path: image, policy: .confinedToImageDirectory)
        #expect(chain.top.format == .vmdk)
        #expect(chain.top.vmdk?.subformat == subformat)
    }

    @Test(arguments: ["monolithicSparse", "twoGbMaxExtentSparse", "streamOptimized", "monolithicFlat"])
    func emptyCreated(subformat: String) throws {
        let dir = try TemporaryDirectory()
        let image = dir.file("e.vmdk")
        try Qemu.img("create", "-f", "vmdk", "-o", "subformat=\(subformat)", image, "3G")
        try Qemu.expectReadsIdentical(image, in: dir)
    }

    @Test func zeroedGrainsAndWritesThroughQemu() throws {
        let dir = try TemporaryDirectory()
        let image = dir.file("z.vmdk")
        try Qemu.img("create", "-f", "vmdk", "-o", "zeroed_grain=on", image, "16M")
        try Qemu.io(image, format: "vmdk", "write -P 0x33 0 2M", "write -z 64k 128k", "write -P 0x44 7M 10k")
        try Qemu.expectReadsIdentical(image, in: dir)
        let map = try DiskImageFile.open(image).allocationMap()
        #expect(map.contains { $0.kind == .zero })
    }

    @Test func snapshotChain() throws {
        let dir = try TemporaryDirectory()
        let raw = try Self.source(in: dir)
        let parent = dir.file("parent.vmdk")
        try Qemu.img("convert", "-f", "raw", "-O", "vmdk", raw, parent)
        let child = dir.file("child.vmdk")
        try Qemu.img("create", "-f", "vmdk", "-b", "parent.vmdk", "-F", "vmdk", child)
        try Qemu.io(child, format: "vmdk", "write -P 0xee 512k 1M", "write -P 0x99 30M 100k")
        try Qemu.expectReadsIdentical(child, in: dir)
        let chain = try BackingChain.resolve(path: child, policy: .confinedToImageDirectory)
        #expect(chain.members.count == 2)
        #expect(chain.top.backingFile == "parent.vmdk")
        // From outside, a snapshot is refused before its parent is opened.
        #expect(throws: WispError.self) { try BackingChain.resolve(path: child, policy: .selfContained) }
    }

    @Test func realImageConvertedByQemu() throws {
        let testImage = try TestImage.path()
        let dir = try TemporaryDirectory()
        let image = dir.file("debian.vmdk")
        try Qemu.img("convert", "-O", "vmdk", "-o", "subformat=streamOptimized", testImage, image)
        try Qemu.expectReadsIdentical(image, in: dir)
    }
}
