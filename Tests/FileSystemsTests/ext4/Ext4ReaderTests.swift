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
        var sizeMiB = 96
        /// The 5000-entry htree directory, in the variants where hashing or checksums differ.
        var wide = false
        var description: String { name }
    }

    static let variants: [Variant] = [
        Variant(name: "ext4 4k default (64bit, metadata_csum, extents, flex_bg)", arguments: ["-b", "4096"], wide: true),
        Variant(name: "ext4 1k", arguments: ["-b", "1024"], wide: true),
        Variant(name: "ext4 ^64bit ^metadata_csum", arguments: ["-b", "4096", "-O", "^64bit,^metadata_csum"], wide: true),
        Variant(name: "ext4 ^64bit with metadata_csum (32-byte descriptors)", arguments: ["-b", "1024", "-O", "^64bit"]),
        Variant(name: "ext4 gdt_csum (uninit_bg)", arguments: ["-b", "1024", "-O", "^metadata_csum,uninit_bg"]),
        Variant(name: "ext4 inline_data", arguments: ["-b", "4096", "-O", "inline_data"], wide: true),
        Variant(name: "ext4 meta_bg", arguments: ["-b", "1024", "-O", "meta_bg,^resize_inode"]),
        Variant(name: "ext4 sparse_super2", arguments: ["-b", "4096", "-O", "sparse_super2"]),
        Variant(name: "ext4 metadata_csum_seed", arguments: ["-b", "4096", "-O", "metadata_csum_seed"]),
        Variant(name: "ext4 128-byte inodes", arguments: ["-b", "4096", "-I", "128"]),
        Variant(name: "ext4 bigalloc", arguments: ["-b", "4096", "-O", "bigalloc", "-C", "65536"], sizeMiB: 256),
        Variant(name: "ext4 64k blocks", arguments: ["-b", "65536"], sizeMiB: 256, wide: true),
        Variant(name: "ext4 ^extent (block maps)", arguments: ["-b", "4096", "-O", "^extent,^64bit"]),
        Variant(name: "ext3", tool: "mkfs.ext3", arguments: ["-b", "4096"], typeName: "ext3"),
        Variant(name: "ext2 ^filetype (types from inodes)", tool: "mkfs.ext2", arguments: ["-b", "4096", "-O", "^filetype"], typeName: "ext2"),
        Variant(name: "ext2 1k (indirect maps)", tool: "mkfs.ext2", arguments: ["-b", "1024"], typeName: "ext2", wide: true),
    ]

    @Test(arguments: variants)
    func readsEveryFileAsMkfsWroteIt(variant: Variant) throws {
        let dir = try TemporaryDirectory("wisp-ext4")
        let source = dir.file("tree")
        var options = Ext4SourceTree.Options()
        options.wide = variant.wide
        try Ext4SourceTree.build(at: source, options: options)
        let image = dir.file("fs.img")
        try Ext4Fixture.make(image: image, from: source, sizeMiB: variant.sizeMiB, tool: variant.tool,
                             arguments: variant.arguments + ["-N", "12000"])
        if variant.wide {
            try Ext4Fixture.indexDirectories(image)
            let htree = try Ext4Fixture.debugfs(image, "htree /wide")
            #expect(htree.contains("Root node dump"), "debugfs finds an htree index on /wide")
            if variant.arguments.contains("1024") {
                #expect(htree.contains("Indirect levels: 1"), "5000 entries in 1 KiB blocks need interior index nodes")
            }
        }
        let fs = try Ext4Fixture.open(image)
        if variant.wide {
            #expect(try fs.inode(try fs.resolve("/wide").inode).isHashIndexed)
        }
        #expect(fs.typeName == variant.typeName)
        #expect(fs.label == "wisp-test")
        #expect(fs.uuid == "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
        #expect(fs.warnings.isEmpty)
        let report = try Ext4TreeComparison.compare(fs, source: source)
        #expect(report.files > (variant.wide ? 5000 : 80))
        #expect(report.bytes > 5 << 20)

        // Path resolution through symlinks, ".." and the 50-level directory.
        let deep = "/deep/" + (1...50).map { "level\($0)" }.joined(separator: "/") + "/bottom"
        #expect(try fs.readFile(deep) == Array("deep down".utf8))
        #expect(try fs.readFile("/link-abs") == Array("nested\n".utf8))
        #expect(try fs.readFile("/link-dir/sub/../link-up") == [0x41])
        #expect(try fs.resolve("/link-dir/sub", followFinalSymlink: false).path == "/dir/sub")
        #expect(throws: WispError.self) { try fs.readFile("/link-long") }
    }
}
