import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

/// Issue 16, failure 8: an inode claiming a size no file on that filesystem can have (2^62
/// bytes on ext4, the maximum on XFS) made `wisp fs cat` stream zeros until killed. Each image
/// is made by the filesystem's own mkfs; the size is then changed by its own debugger
/// (debugfs, xfs_db, which keep checksums right) or, for FAT, which has none, by a patch.
@Suite struct FileSizeLimitTests {
    static func source(_ dir: TemporaryDirectory) throws -> String {
        let source = dir.file("src")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: source + "/f"))
        return source
    }

    func ext4(_ dir: TemporaryDirectory, features: String, size: UInt64) throws -> Ext4Reader {
        let image = dir.file("ext4-\(features).img")
        try Ext4Fixture.make(image: image, from: try Self.source(dir), sizeMiB: 16, arguments: ["-b", "4096", "-O", features])
        _ = try ToolRunner.check("debugfs", ["-w", "-R", "sif /f size \(size)", image])
        return try Ext4Fixture.open(image)
    }

    func expectRefused(_ fs: any FileSystem, says: String) throws {
        let inode = try fs.resolve("/f").inode
        #expect {
            _ = try fs.read(inode: inode, offset: 0, count: 1 << 20)
        } throws: { error in
            (error as? WispError)?.kind == .corrupt && "\(error)".contains(says)
        }
    }

    @Test func ext4WithHugeFileRefusesSizesPastTheExtentLimit() throws {
        let dir = try TemporaryDirectory("ext4limit")
        let limit: UInt64 = ((1 << 32) - 1) << 12
        let fs = try ext4(dir, features: "huge_file", size: 1 << 62)
        try expectRefused(fs, says: "size 4611686018427387904 exceeds the largest file this filesystem can hold (\(limit) bytes: extent-mapped, 4096-byte blocks, with huge_file)")
        // Exactly the limit is a (sparse) file like any other: its end reads as zeros.
        let atLimit = try ext4(dir, features: "huge_file", size: limit)
        let inode = try atLimit.resolve("/f").inode
        #expect(try atLimit.read(inode: inode, offset: 0, count: 6) == Array("hello\n".utf8))
        #expect(try atLimit.read(inode: inode, offset: limit - 4096, count: 8192) == [UInt8](repeating: 0, count: 4096))
    }

    @Test func ext4WithoutHugeFileHasTheSmallerLimit() throws {
        let dir = try TemporaryDirectory("ext4limit")
        // Without huge_file, i_blocks counts 512-byte sectors in 32 bits: 2 TiB less a block.
        let limit: UInt64 = (((1 << 32) - 1) >> 3) << 12
        let fs = try ext4(dir, features: "^huge_file", size: 1 << 41)
        try expectRefused(fs, says: "size 2199023255552 exceeds the largest file this filesystem can hold (\(limit) bytes: extent-mapped, 4096-byte blocks, without huge_file)")
        // The same size is fine where huge_file is on.
        let huge = try ext4(dir, features: "huge_file", size: 1 << 41)
        #expect(try huge.read(inode: try huge.resolve("/f").inode, offset: 0, count: 6) == Array("hello\n".utf8))
    }

    @Test func xfsRefusesASizeWithTheSignBitSet() throws {
        let dir = try TemporaryDirectory("xfslimit")
        let source = try Self.source(dir)
        let image = dir.file("xfs.img")
        let proto = dir.file("proto")
        try "wisp\n0 0\nd--755 0 0\n f ---644 0 0 \(source)/f\n$\n".write(toFile: proto, atomically: true, encoding: .utf8)
        try ToolRunner.check("truncate", ["-s", "64M", image])
        try ToolRunner.check("mkfs.xfs", ["-q", "-f", "-p", proto, image], environment: XFSFixture.smallFilesystemEnvironment)
        // xfs_db's `write core.size` stops at 2^63-1, which XFS allows (a sparse file of
        // that size is valid to the kernel). The hostile field is written as bytes at the
        // inode xfs_db locates, and xfs_db then recomputes the inode's CRC.
        let stack = try ToolRunner.check("xfs_db", ["-r", "-c", "path /f", "-c", "stack", image]).stdoutText
        let words = stack.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "," })
        let offset = try #require(words.firstIndex(of: "offset").flatMap { UInt64(words[$0 + 1]) })
        let number = try #require(words.firstIndex(of: "inode").flatMap { UInt64(words[$0 + 1]) })
        try FileBlockDevice(path: image, writable: true).write([UInt8](repeating: 0xFF, count: 8), at: offset + 56)
        try ToolRunner.check("xfs_db", ["-x", "-c", "inode \(number)", "-c", "crc -r", image])
        let fs = try XFSReader(device: try FileBlockDevice(path: image))
        #expect(try fs.stat(inode: number).size == UInt64.max)
        try expectRefused(fs, says: "size 18446744073709551615 exceeds the largest file XFS can hold (9223372036854775807 bytes")
    }

    @Test func btrfsRefusesASizeWithTheSignBitSet() throws {
        // btrfs checksums every tree block and ships no debugger that edits an inode item,
        // so the item is decoded directly: the layout of struct btrfs_inode_item.
        var item = [UInt8](repeating: 0, count: BtrfsInode.itemSize)
        item.putLE64(UInt64.max, at: 16)
        item.putLE32(0o100644, at: 52)
        let inode = try BtrfsInode.parse(ByteReader(item, source: "btrfs.img", structure: "btrfs leaf", baseOffset: 0x1000))
        #expect {
            _ = try inode.checkedSize(inode: 257, source: "btrfs.img")
        } throws: { error in
            (error as? WispError)?.kind == .corrupt && "\(error)".contains("btrfs.img: btrfs inode item of inode 257 at offset 4112: size 18446744073709551615 exceeds the largest file btrfs can hold (9223372036854775807 bytes")
        }
        item.putLE64(1 << 62, at: 16)
        #expect(try BtrfsInode.parse(ByteReader(item, source: "btrfs.img", structure: "btrfs leaf")).checkedSize(inode: 257, source: "btrfs.img") == 1 << 62)
    }

    @Test func fatRefusesASizePastItsDataArea() throws {
        let dir = try TemporaryDirectory("fatlimit")
        let source = try Self.source(dir)
        let image = dir.file("fat.img")
        try ToolRunner.check("mkfs.vfat", ["-C", "-F", "16", image, "20000"])
        try ToolRunner.check("mcopy", ["-i", image, source + "/f", "::/F"], environment: FATFixture.mtoolsEnvironment)
        let fs = try FATFileSystem(device: try FileBlockDevice(path: image))
        let entry = try fs.resolve("/F").inode
        #expect(try fs.read(inode: entry, offset: 0, count: 100) == Array("hello\n".utf8))
        try FileBlockDevice(path: image, writable: true).write([0xFF, 0xFF, 0xFF, 0xFF], at: entry + 28)
        let reopened = try FATFileSystem(device: try FileBlockDevice(path: image))
        try expectRefusedFAT(reopened, entry: entry)
    }

    func expectRefusedFAT(_ fs: FATFileSystem, entry: UInt64) throws {
        #expect {
            _ = try fs.read(inode: entry, offset: 0, count: 1 << 20)
        } throws: { error in
            let text = "\(error)"
            return (error as? WispError)?.kind == .corrupt && text.contains("FAT directory entry at offset \(entry + 28)")
                && text.contains("file size 4294967295 exceeds the largest file this filesystem can hold (")
                && !text.contains("inode")
        }
    }
}
