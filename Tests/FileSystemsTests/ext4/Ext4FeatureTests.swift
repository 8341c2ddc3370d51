import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

/// Single features, each set up with the real e2fsprogs (mke2fs, debugfs) and checked
/// against what debugfs itself reports or dumps.
@Suite struct Ext4FeatureTests {
    /// A heavily fragmented file: 1200 one-block files, every other one deleted by debugfs,
    /// then a 700 KB file written into the gaps needs >500 extents, an extent tree of depth 2
    /// with 1 KiB blocks.
    static func fragmentedImage(in dir: TemporaryDirectory, checksums: Bool) throws -> (image: String, big: [UInt8]) {
        let source = dir.file("tree")
        try Ext4SourceTree.mkdir("\(source)/d")
        for i in 1...1200 { try Ext4SourceTree.write("\(source)/d/f\(i)", [UInt8](repeating: 0x61, count: 1000)) }
        let image = dir.file("frag.img")
        try Ext4Fixture.make(image: image, from: source, sizeMiB: 8,
                             arguments: ["-b", "1024", "-N", "2000", "-O", checksums ? "metadata_csum" : "^metadata_csum"])
        var rng = SplitMix64(seed: 42)
        let big = rng.bytes(700_000)
        try Ext4SourceTree.write(dir.file("big"), big)
        var commands = (1...1200).filter { $0 % 2 == 1 }.map { "rm /d/f\($0)" }
        commands.append("write \(dir.file("big")) /big")
        try Ext4SourceTree.write(dir.file("cmds"), Array(commands.joined(separator: "\n").utf8))
        try ToolRunner.check("debugfs", ["-w", "-f", dir.file("cmds"), image])
        return (image, big)
    }

    @Test(arguments: [true, false])
    func extentTreeOfDepthTwo(checksums: Bool) throws {
        let dir = try TemporaryDirectory("wisp-ext4-frag")
        let (image, big) = try Self.fragmentedImage(in: dir, checksums: checksums)
        let extents = try Ext4Fixture.debugfs(image, "ex /big")
        #expect(extents.contains(" 2/ 2 "), "debugfs shows a depth-2 tree:\n\(extents.prefix(400))")
        let fs = try Ext4Fixture.open(image)
        let inode = try fs.resolve("/big").inode
        #expect(try fs.read(inode: inode, offset: 0, count: big.count + 10) == big)
        #expect(try fs.read(inode: inode, offset: 123_457, count: 5000) == Array(big[123_457..<128_457]))
        try ToolRunner.check("debugfs", ["-R", "dump /big \(dir.file("dumped"))", image])
        #expect(try fs.readFile("/big") == [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("dumped")))))
        let runs = try fs.fileRuns(try fs.inode(inode))
        #expect(runs.count > 300)
        #expect(try fs.list(directory: try fs.resolve("/d").inode).count == 600)
    }

    @Test func unwrittenExtentsAndHolesReadAsZeros() throws {
        let dir = try TemporaryDirectory("wisp-ext4-unwritten")
        let image = dir.file("fs.img")
        try Ext4Fixture.make(image: image, from: nil, sizeMiB: 16, arguments: ["-b", "1024"])
        try Ext4SourceTree.write(dir.file("data"), Array(repeating: 0x5A, count: 3000))
        let commands = """
            write /dev/null /u
            fallocate /u 10 59
            sif /u size 102400
            write \(dir.file("data")) /mixed
            fallocate /mixed 20 29
            sif /mixed size 40000
            """
        try Ext4SourceTree.write(dir.file("cmds"), Array(commands.utf8))
        try ToolRunner.check("debugfs", ["-w", "-f", dir.file("cmds"), image])
        #expect(try Ext4Fixture.debugfs(image, "ex /u").contains("Uninit"))
        let fs = try Ext4Fixture.open(image)
        for name in ["u", "mixed"] {
            try ToolRunner.check("debugfs", ["-R", "dump /\(name) \(dir.file("\(name).out"))", image])
            let expected = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("\(name).out"))))
            #expect(try fs.readFile("/\(name)") == expected, "\(name) matches debugfs dump")
        }
        let runs = try fs.fileRuns(try fs.inode(try fs.resolve("/u").inode))
        #expect(runs == [Ext4Run(logical: 10, physical: runs.first?.physical ?? 0, length: 50, unwritten: true)])
    }

    @Test func nanosecondsAndDatesPast2038() throws {
        let dir = try TemporaryDirectory("wisp-ext4-times")
        let image = dir.file("fs.img")
        try Ext4Fixture.make(image: image, from: nil, sizeMiB: 8, arguments: [])
        let commands = """
            write /dev/null /f
            sif /f mtime @2208988800
            sif /f mtime_extra 0x1D6F3455
            sif /f atime @-100000000
            sif /f atime_extra 0x18
            sif /f ctime_extra 0x3
            """
        try Ext4SourceTree.write(dir.file("cmds"), Array(commands.utf8))
        try ToolRunner.check("debugfs", ["-w", "-f", dir.file("cmds"), image])
        let judged = try Ext4Fixture.debugfs(image, "stat /f")
        #expect(judged.contains("2040"), "debugfs reads the mtime as 2040")
        let info = try Ext4Fixture.open(image).stat(path: "/f")
        #expect(info.modificationTime == Timestamp(seconds: 2_208_988_800, nanoseconds: 123_456_789))
        #expect(info.accessTime == Timestamp(seconds: -100_000_000, nanoseconds: 6))
        #expect(info.changeTime.seconds > 3 << 32, "epoch bits 3 put ctime past 2242")
    }

    @Test func largeValuesInTheirOwnInodeAndPOSIXACLs() throws {
        let dir = try TemporaryDirectory("wisp-ext4-eainode")
        let source = dir.file("tree")
        try Ext4SourceTree.mkdir(source)
        try Ext4SourceTree.write("\(source)/f", Array("hi\n".utf8))
        // user::rw- user:1000:rw- group::r-- mask::rw- other::r--
        let acl = "0x0200000001000600ffffffff02000600e803000004000400ffffffff10000600ffffffff20000400ffffffff"
        try Ext4SourceTree.setxattr("\(source)/f", "system.posix_acl_access", acl)
        let image = dir.file("fs.img")
        try Ext4Fixture.make(image: image, from: source, sizeMiB: 32, arguments: ["-O", "ea_inode"])
        var rng = SplitMix64(seed: 7)
        try Ext4SourceTree.write(dir.file("value"), rng.bytes(1024).map { 0x41 + $0 % 26 })
        try ToolRunner.check("debugfs", ["-w", "-R", "ea_set -f \(dir.file("value")) /f user.huge", image])
        try ToolRunner.check("debugfs", ["-R", "ea_get -f \(dir.file("got")) /f user.huge", image])
        let expected = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("got"))))
        let fs = try Ext4Fixture.open(image)
        let xattrs = try fs.xattrs(inode: try fs.resolve("/f").inode)
        #expect(xattrs["user.huge"] == expected && expected.count == 1024)
        let sourceXattrs = try Ext4TreeComparison.sourceXattrs(source)["\(source)/f"] ?? [:]
        #expect(xattrs["system.posix_acl_access"] == sourceXattrs["system.posix_acl_access"])
        #expect(xattrs["system.posix_acl_access"]?.count == 44)
    }

    @Test func journalNeedingRecoveryIsAWarningAndReadingProceeds() throws {
        let dir = try TemporaryDirectory("wisp-ext4-recover")
        let source = dir.file("tree")
        try Ext4SourceTree.mkdir(source)
        try Ext4SourceTree.write("\(source)/hello", Array("world".utf8))
        let image = dir.file("fs.img")
        try Ext4Fixture.make(image: image, from: source, sizeMiB: 16, arguments: [])
        try ToolRunner.check("debugfs", ["-w", "-R", "feature needs_recovery", image])
        let fs = try Ext4Fixture.open(image)
        #expect(fs.warnings.count == 1)
        #expect(fs.warnings.first?.contains("journal needs recovery") == true)
        #expect(try fs.readFile("/hello") == Array("world".utf8))
    }

    @Test func externalJournalDevicesAreRefusedByName() throws {
        let dir = try TemporaryDirectory("wisp-ext4-jdev")
        let image = dir.file("journal.img")
        try Ext4Fixture.make(image: image, from: nil, sizeMiB: 8, arguments: ["-O", "journal_dev", "-b", "4096"])
        do {
            _ = try Ext4Fixture.open(image)
            Issue.record("a journal device opened as a filesystem")
        } catch let error as WispError {
            #expect(error.kind == .unsupported)
            #expect(error.message.contains("journal_dev"))
        }
    }

    @Test func orphanFileAndCasefoldAreTolerated() throws {
        let dir = try TemporaryDirectory("wisp-ext4-orphan")
        let source = dir.file("tree")
        try Ext4SourceTree.build(at: source, options: .init(wide: false, deep: false, specials: false, xattrs: false, bigFiles: false))
        let image = dir.file("fs.img")
        try Ext4Fixture.make(image: image, from: source, sizeMiB: 128, arguments: ["-O", "orphan_file,casefold"])
        let fs = try FileSystemOpener.open(try FileBlockDevice(path: image))
        #expect(fs is Ext4Reader)
        #expect(try Ext4TreeComparison.compare(fs, source: source).files > 20)
    }

    @Test func aFileOver4GiBInASparseImage() throws {
        let dir = try TemporaryDirectory("wisp-ext4-huge")
        let source = dir.file("tree")
        try Ext4SourceTree.build(at: source, options: .init(wide: false, deep: false, specials: false, xattrs: false, bigFiles: false, hugeSparse: true))
        let image = dir.file("fs.img")
        try Ext4Fixture.make(image: image, from: source, sizeMiB: 8192, arguments: [])
        let fs = try Ext4Fixture.open(image)
        let started = ContinuousClock.now
        let info = try fs.stat(path: "/huge")
        #expect(info.size == 5 << 30)
        #expect(try fs.read(inode: info.inode, offset: (5 << 30) - 4, count: 100) == Array("tail".utf8))
        #expect(try fs.read(inode: info.inode, offset: 0, count: 4) == Array("head".utf8))
        _ = try Ext4TreeComparison.compare(fs, source: source)
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    @Test func layoutsAreWhatTheFixturesClaim() throws {
        let dir = try TemporaryDirectory("wisp-ext4-layout")
        let source = dir.file("tree")
        try Ext4SourceTree.build(at: source, options: .init(wide: false, deep: false, specials: false, xattrs: false))
        // Inline data: small files and directories live in the inode.
        let inlineImage = dir.file("inline.img")
        try Ext4Fixture.make(image: inlineImage, from: source, sizeMiB: 96, arguments: ["-O", "inline_data"])
        let inline = try Ext4Fixture.open(inlineImage)
        for path in ["/size-59", "/size-61", "/dir/sub"] {
            #expect(try inline.inode(try inline.resolve(path).inode).hasInlineData, "\(path) is inline")
            #expect(try Ext4Fixture.debugfs(inlineImage, "stat \(path)").contains("Size of inline data"))
        }
        // ext2 with 1 KiB blocks: the sparse file's island at 70 MiB needs a triple-indirect block.
        let ext2Image = dir.file("ext2.img")
        try Ext4Fixture.make(image: ext2Image, from: source, sizeMiB: 96, tool: "mkfs.ext2", arguments: ["-b", "1024"])
        #expect(try Ext4Fixture.debugfs(ext2Image, "stat /sparse").contains("(TIND)"))
        #expect(try Ext4Fixture.debugfs(ext2Image, "stat /indirect-5m").contains("(DIND)"))
        let ext2 = try Ext4Fixture.open(ext2Image)
        #expect(try !ext2.inode(try ext2.resolve("/sparse").inode).usesExtents)
        _ = try Ext4TreeComparison.compare(ext2, source: source)
    }

    @Test func bigFilesAreReadARunAtATime() throws {
        let dir = try TemporaryDirectory("wisp-ext4-stream")
        let source = dir.file("tree")
        try Ext4SourceTree.build(at: source, options: .init(wide: false, deep: false, specials: false, xattrs: false))
        let image = dir.file("fs.img")
        try Ext4Fixture.make(image: image, from: source, sizeMiB: 96, arguments: [])
        let device = CountingBlockDevice(try FileBlockDevice(path: image))
        let fs = try Ext4Reader(device: device)
        let inode = try fs.resolve("/indirect-5m").inode
        let size = Int(try fs.stat(inode: inode).size)
        let before = device.reads.withLock { $0 }
        let bytes = try fs.read(inode: inode, offset: 0, count: size)
        let reads = device.reads.withLock { $0 } - before
        #expect(bytes == [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(source)/indirect-5m"))))
        #expect(reads <= 4, "5 MiB in \(reads) device reads")
    }

    @Test func encryptedInodesAreRefusedClearly() throws {
        let dir = try TemporaryDirectory("wisp-ext4-encrypt")
        let source = dir.file("tree")
        try Ext4SourceTree.mkdir("\(source)/private")
        try Ext4SourceTree.write("\(source)/private/secret", Array(repeating: 0x53, count: 5000))
        let image = dir.file("fs.img")
        try Ext4Fixture.make(image: image, from: source, sizeMiB: 16, arguments: ["-O", "encrypt"])
        let before = try Ext4Fixture.open(image)
        let fileInode = try before.resolve("/private/secret").inode
        let directoryInode = try before.resolve("/private").inode
        // Mark the file and its directory as fscrypt-encrypted (EXT4_ENCRYPT_FL), as the kernel would.
        try Ext4SourceTree.write(dir.file("cmds"), Array("sif /private/secret flags 0x80800\nsif /private flags 0x80800\n".utf8))
        try ToolRunner.check("debugfs", ["-w", "-f", dir.file("cmds"), image])
        let fs = try Ext4Fixture.open(image)
        let attempts: [(String, () throws -> Void)] = [
            ("file", { _ = try fs.read(inode: fileInode, offset: 0, count: 10) }),
            ("directory", { _ = try fs.list(directory: directoryInode) }),
        ]
        for (what, body) in attempts {
            do {
                try body()
                Issue.record("\(what): read without an error")
            } catch let error as WispError {
                #expect(error.kind == .unsupported && error.message.contains("encrypted"), "\(what): \(error.message)")
            }
        }
    }

    @Test func withoutTheFiletypeFeatureTypesComeFromInodes() throws {
        let dir = try TemporaryDirectory("wisp-ext4-nofiletype")
        let source = dir.file("tree")
        try Ext4SourceTree.mkdir("\(source)/d")
        try Ext4SourceTree.write("\(source)/f", [1, 2, 3])
        try FileManager.default.createSymbolicLink(atPath: "\(source)/l", withDestinationPath: "d")
        let image = dir.file("fs.img")
        try Ext4Fixture.make(image: image, from: source, sizeMiB: 8, tool: "mkfs.ext2", arguments: ["-O", "^filetype"])
        let fs = try Ext4Fixture.open(image)
        let entries = try fs.list(directory: fs.rootInode)
        #expect(entries.allSatisfy { $0.type == nil })
        #expect(try fs.stat(path: "/l", followFinalSymlink: false).type == .symlink)
        #expect(try fs.stat(path: "/l").type == .directory)
        #expect(try fs.readFile("/f") == [1, 2, 3])
    }
}
