import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

/// Issue 16, part 4: each filesystem made by its own mkfs, then one structure changed (by its
/// own debugger where it keeps checksums) to claim a huge size or count; the reader refuses
/// with the bound named and stays small.
@Suite struct FileSystemResourceBoundsTests {
    static let memoryAllowanceKiB = 256 << 10

    static func expectRefused(_ phrases: [String], sourceLocation: SourceLocation = #_sourceLocation,
                              _ body: () throws -> Void) {
        let before = ResourceUsage.maxResidentKiB()
        do {
            try body()
            Issue.record("no error", sourceLocation: sourceLocation)
        } catch let error as WispError {
            #expect(error.kind == .corrupt, "\(error)", sourceLocation: sourceLocation)
            for phrase in phrases {
                #expect(error.message.contains(phrase), "\(error.message) lacks \(phrase)", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("not a WispError: \(error)", sourceLocation: sourceLocation)
        }
        #expect(ResourceUsage.maxResidentKiB() - before < memoryAllowanceKiB, sourceLocation: sourceLocation)
    }

    static func tree(_ dir: TemporaryDirectory) throws -> String {
        let source = dir.file("src")
        try FileManager.default.createDirectory(atPath: source + "/d", withIntermediateDirectories: true)
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: source + "/d/f"))
        return source
    }

    /// A directory claiming a terabyte: refused at the directory-size bound before any
    /// block is read.
    @Test func ext4DirectoryClaimingATerabyte() throws {
        let dir = try TemporaryDirectory("bounds-ext4")
        let image = dir.file("ext4.img")
        try Ext4Fixture.make(image: image, from: try Self.tree(dir), sizeMiB: 16, arguments: ["-b", "4096"])
        _ = try ToolRunner.check("debugfs", ["-w", "-R", "sif /d size 0x10000000000", image])
        let fs = try Ext4Fixture.open(image)
        let d = try fs.resolve("/d").inode
        Self.expectRefused(["directory size 1099511627776 exceeds the \(Ext4Reader.maxDirectoryBytes)-byte limit"]) {
            _ = try fs.list(directory: d)
        }
    }

    /// A file claiming 2^32 - 1 extents in a fork that holds a few: refused at the extent
    /// bound, then at the fork's size.
    @Test func xfsForkClaimingFourBillionExtents() throws {
        let dir = try TemporaryDirectory("bounds-xfs")
        let source = try Self.tree(dir)
        let image = dir.file("xfs.img")
        let proto = dir.file("proto")
        try "wisp\n0 0\nd--755 0 0\n f ---644 0 0 \(source)/d/f\n$\n".write(toFile: proto, atomically: true, encoding: .utf8)
        try ToolRunner.check("truncate", ["-s", "64M", image])
        try ToolRunner.check("mkfs.xfs", ["-q", "-f", "-p", proto, image], environment: XFSFixture.smallFilesystemEnvironment)
        try ToolRunner.check("xfs_db", ["-x", "-c", "path /f", "-c", "write core.nextents 4294967295", image])
        let fs = try XFSReader(device: try FileBlockDevice(path: image))
        let f = try fs.resolve("/f").inode
        Self.expectRefused(["4294967295 extents is beyond the \(XFSReader.maxExtents) this reader accepts"]) {
            _ = try fs.read(inode: f, offset: 0, count: 6)
        }
        try ToolRunner.check("xfs_db", ["-x", "-c", "inode \(f)", "-c", "write core.nextents 1000", image])
        let again = try XFSReader(device: try FileBlockDevice(path: image))
        Self.expectRefused(["1000 extents do not fit the"]) {
            _ = try again.read(inode: f, offset: 0, count: 6)
        }
    }

    /// A FAT16 boot sector claiming 65,535 sectors per FAT on a 10 MB volume: refused before
    /// any of the table is read, the sums said.
    @Test func fatClaimingAHugeTable() throws {
        let dir = try TemporaryDirectory("bounds-fat")
        let image = dir.file("fat.img")
        try ToolRunner.check("mkfs.vfat", ["-C", "-F", "16", image, "10000"])
        try FileBlockDevice(path: image, writable: true).write([0xFF, 0xFF], at: 22)
        Self.expectRefused(["FAT boot sector at offset 14", "(131106 sectors) fill the whole 20000-sector volume"]) {
            _ = try FATFileSystem(device: try FileBlockDevice(path: image))
        }
    }
}
