import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

/// Images made by the real mke2fs from a generated tree, read back and compared with the
/// tree file by file: bytes, type, mode, size, owner, times, link targets, device numbers,
/// xattrs and hard links.
@Suite struct Ext4ReaderTests {
    struct Variant: CustomStringConvertible, Sendable {
        var name: String
        var tool = "mkfs.ext4"
        var arguments: [String]
        var typeName = "ext4"
        var nanoseconds = true
        var sizeMiB = 96
        var description: String { name }
    }

    static let variants: [Variant] = [
        Variant(name: "ext4 4k default (64bit, metadata_csum, extents, flex_bg)", arguments: ["-b", "4096"]),
        Variant(name: "ext4 1k", arguments: ["-b", "1024"]),
        Variant(name: "ext4 ^64bit ^metadata_csum", arguments: ["-b", "4096", "-O", "^64bit,^metadata_csum"]),
        Variant(name: "ext4 gdt_csum (uninit_bg)", arguments: ["-b", "1024", "-O", "^metadata_csum,uninit_bg"]),
        Variant(name: "ext4 inline_data", arguments: ["-b", "4096", "-O", "inline_data"]),
        Variant(name: "ext4 meta_bg", arguments: ["-b", "1024", "-O", "meta_bg,^resize_inode"]),
        Variant(name: "ext4 sparse_super2", arguments: ["-b", "4096", "-O", "sparse_super2"]),
        Variant(name: "ext4 metadata_csum_seed", arguments: ["-b", "4096", "-O", "metadata_csum_seed"]),
        Variant(name: "ext4 128-byte inodes", arguments: ["-b", "4096", "-I", "128"], nanoseconds: false),
        Variant(name: "ext4 ^extent (block maps)", arguments: ["-b", "4096", "-O", "^extent"]),
        Variant(name: "ext3", tool: "mkfs.ext3", arguments: ["-b", "4096"], typeName: "ext3"),
        Variant(name: "ext2 1k (indirect maps)", tool: "mkfs.ext2", arguments: ["-b", "1024"], typeName: "ext2"),
    ]

    @Test(arguments: variants)
    func readsEveryFileAsMkfsWroteIt(variant: Variant) throws {
        let dir = try TemporaryDirectory("wisp-ext4")
        let source = dir.file("tree")
        try Ext4SourceTree.build(at: source)
        let image = dir.file("fs.img")
        try Ext4Fixture.make(image: image, from: source, sizeMiB: variant.sizeMiB, tool: variant.tool,
                             arguments: variant.arguments + ["-N", "12000"])
        let fs = try Ext4Fixture.open(image)
        #expect(fs.typeName == variant.typeName)
        #expect(fs.label == "wisp-test")
        #expect(fs.uuid == "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
        #expect(fs.warnings.isEmpty)
        let report = try Ext4TreeComparison.compare(fs, source: source, nanosecondTimes: variant.nanoseconds)
        #expect(report.files > 5000)
        #expect(report.bytes > 5 << 20)
    }
}
