import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

/// Reads every path of an XFS image made by mkfs.xfs from a generated tree and compares
/// bytes, mode, ownership, size, link targets, device numbers and xattrs with the source.
@Suite("XFSReader", .serialized)
struct XFSReaderTests {
    static func compare(_ fixture: XFSFixture, _ fs: XFSReader) throws {
        try ReaderTreeJudge.expectTree(try ReaderTreeJudge.walk(fs), in: fs, expected: fixture.expected, xattrs: fixture.expectedXattrs)
        // Paths resolve through symlinks, including absolute ones that stay inside the fs.
        #expect(try fs.readFile("/abs-link/d3/d4/d5/d6/d7/d8/d9/d10/d11/d12/d13/d14/d15/d16/d17/d18/d19/d20/d21/d22/d23/d24/bottom")
                == Array("bottom of the tree\n".utf8))
        // Ranged reads across extent and hole boundaries.
        if case .file(let content, _, _, _) = fixture.expected["/holes"] {
            let inode = try fs.resolve("/holes").inode
            for (offset, count) in [(0, 10), (99 * fixture.blockSize + 7, 3 * fixture.blockSize), (content.count - 5, 100)] {
                let got = try fs.read(inode: inode, offset: UInt64(offset), count: count)
                #expect(got == Array(content[offset..<min(content.count, offset + count)]))
            }
        }
        // Times decode to the moment mkfs ran (bigtime or classic encoding).
        let now = Int64(Date().timeIntervalSince1970)
        let started = Int64(fixture.mkfsStarted.timeIntervalSince1970)
        for path in ["/size-5-1023", "/deep", "/long-link"] {
            let info = try fs.stat(path: path, followFinalSymlink: false)
            // mkfs.xfs leaves atime at the epoch on v4; mtime and ctime are always set.
            #expect(info.accessTime.seconds == 0 || info.accessTime.seconds >= started - 120)
            for t in [info.modificationTime, info.changeTime] {
                #expect(t.seconds >= started - 120 && t.seconds <= now + 5, "\(path): time \(t.seconds) not near \(now)")
                #expect(t.nanoseconds < 1_000_000_000)
            }
        }
        #expect(try fs.stat(path: "/deep").linkCount == 3)
        #expect(fs.label == "wisp-xfs")
        let dbUUID = try fixture.db(["uuid"], writable: false)
        #expect(dbUUID.contains(fs.uuid ?? "none"), "xfs_db says \(dbUUID), reader says \(fs.uuid ?? "nil")")
    }

    /// What xfs_db says the data fork format of `path` is (local, extents, btree).
    static func format(_ fixture: XFSFixture, _ path: String) throws -> String {
        let out = try fixture.db(["path \(path)", "print core.format"], writable: false)
        return out.split(separator: "(").last.map { String($0.dropLast().prefix(while: { $0 != ")" })) } ?? out
    }

    func check(options: [String], blockSize: Int = 4096, expectV5: Bool,
               directories: [(String, Int, Int, Int)] = XFSFixture.standardDirectories,
               imageSize: String = "192M") throws -> XFSFixture {
        let fixture = try XFSFixture(options: options, blockSize: blockSize, directories: directories, imageSize: imageSize)
        let fs = try XFSReader(device: FileBlockDevice(path: fixture.image))
        #expect(fs.sb.isV5 == expectV5)
        #expect(fs.sb.blockSize == UInt32(blockSize))
        try Self.compare(fixture, fs)
        // Through the generic opener too.
        let opened = try FileSystemOpener.open(FileBlockDevice(path: fixture.image))
        #expect(opened.typeName == "xfs")
        // The directory forms and fork formats the fixture meant to produce really occurred.
        #expect(try Self.format(fixture, "/sf") == "local")
        #expect(try Self.format(fixture, "/leaf") == "extents")
        #expect(try Self.format(fixture, "/fragmented") == "btree")
        return fixture
    }

    @Test("v5, 4 KiB blocks, defaults (crc, ftype, bigtime, finobt, sparse inodes)")
    func v5Default() throws {
        let fixture = try check(options: [], expectV5: true)
        #expect(try fixture.db(["version"], writable: false).contains("BIGTIME"))
    }

    @Test("v5, 4 KiB blocks and sectors, nrext64 and no bigtime")
    func v5Nrext64() throws {
        let fixture = try check(options: ["-i", "nrext64=1", "-m", "bigtime=0", "-s", "size=4096"], expectV5: true)
        let version = try fixture.db(["version"], writable: false)
        #expect(version.contains("NREXT64") && !version.contains("BIGTIME"))
        #expect(try XFSReader(device: FileBlockDevice(path: fixture.image)).sb.sectorSize == 4096)
    }

    @Test("v5, 64-bit inode numbers (sparse 4 TiB image, 5 AGs): i8 shortform entries")
    func v5LargeInodeNumbers() throws {
        // mkfs spreads new directories over the AGs; AG 2 and above have inode numbers
        // past 2^32, so shortform parents must store 8-byte numbers (i8count).
        let fixture = try check(options: ["-d", "agcount=5", "-l", "size=64m"], expectV5: true, imageSize: "4T")
        let fs = try XFSReader(device: FileBlockDevice(path: fixture.image))
        var wide = 0
        var pending = [fs.rootInode]
        while let dir = pending.popLast() {
            let node = try fs.inode(dir)
            for entry in try fs.list(directory: dir) where entry.type == .directory {
                pending.append(entry.inode)
                if node.format == .local && entry.inode > UInt64(UInt32.max) { wide += 1 }
            }
        }
        #expect(wide > 0, "no shortform directory holds a 64-bit inode number")
    }

    @Test("v5, 1 KiB blocks, 8 KiB directory blocks")
    func v5SmallBlocks() throws {
        _ = try check(options: ["-b", "size=1024", "-n", "size=8192"], blockSize: 1024, expectV5: true)
    }

    @Test("v4 (no CRC, no ftype, 256-byte inodes)")
    func v4NoFtype() throws {
        _ = try check(options: ["-m", "crc=0", "-n", "ftype=0", "-i", "size=256"], expectV5: false)
    }

    @Test("v4 with ftype, 1 KiB blocks")
    func v4Ftype1K() throws {
        _ = try check(options: ["-m", "crc=0", "-n", "ftype=1", "-b", "size=1024"], blockSize: 1024, expectV5: false)
    }

    @Test("unknown incompat features are refused by name; bad CRCs and truncation are caught")
    func refusals() throws {
        let fixture = try XFSFixture(options: [], directories: XFSFixture.smallDirectories)
        let base = try FileBlockDevice(path: fixture.image)
        var sector = try base.read(at: 0, count: 512)
        // Set incompat bit 9 (zoned) and an unknown bit 30, then fix the CRC so only the
        // feature check can refuse it.
        let incompat = UInt32(sector[216]) << 24 | UInt32(sector[217]) << 16 | UInt32(sector[218]) << 8 | UInt32(sector[219])
        sector.putBE32(incompat | 1 << 9 | 1 << 30, at: 216)
        sector.putLE32(0, at: 224)
        sector.putLE32(CRC32C.checksum(sector), at: 224)
        var patches: [UInt64: UInt8] = [:]
        for (i, b) in sector.enumerated() { patches[UInt64(i)] = b }
        do {
            _ = try XFSReader(device: PatchedBlockDevice(base: base, patches: patches))
            Issue.record("unknown incompat features were accepted")
        } catch let error as WispError {
            #expect(error.kind == .unsupported)
            #expect(error.message.contains("zoned") && error.message.contains("0x40000000"), "\(error.message)")
        }
        // A flipped label byte without CRC repair fails the superblock CRC.
        do {
            _ = try XFSReader(device: PatchedBlockDevice(base: base, patches: [110: 0x7F]))
            Issue.record("superblock CRC mismatch was accepted")
        } catch let error as WispError {
            #expect(error.kind == .corrupt && error.message.contains("CRC"), "\(error.message)")
        }
        // A truncated image.
        let truncated = try SliceBlockDevice(base: base, start: 0, size: base.size / 2, name: "truncated")
        #expect(throws: WispError.self) { _ = try XFSReader(device: truncated) }
        // Log-incompatible items (a log that was not cleanly unmounted) are a warning.
        var logged = try base.read(at: 0, count: 512)
        logged.putBE32(1 << 0 | 1 << 7, at: 220)
        logged.putLE32(0, at: 224)
        logged.putLE32(CRC32C.checksum(logged), at: 224)
        var logPatches: [UInt64: UInt8] = [:]
        for (i, b) in logged.enumerated() { logPatches[UInt64(i)] = b }
        let warned = try XFSReader(device: PatchedBlockDevice(base: base, patches: logPatches))
        #expect(warned.warnings.count == 1 && warned.warnings[0].contains("logged xattrs") && warned.warnings[0].contains("0x80"),
                "\(warned.warnings)")
        #expect(try XFSReader(device: base).warnings.isEmpty)
        // A new UUID from xfs_admin sets META_UUID: metadata keeps the old UUID, which the
        // reader must use for verification while reporting the new one.
        try ToolRunner.check("xfs_admin", ["-U", "generate", fixture.image])
        let changed = try XFSReader(device: FileBlockDevice(path: fixture.image))
        #expect(changed.sb.incompat & XFSSuperblock.incompatMetaUUID != 0)
        #expect(try fixture.db(["uuid"], writable: false).contains(changed.uuid ?? "none"))
        let found = try ReaderTreeJudge.walk(changed)
        #expect(found["/block"] != nil && found["/deep/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/d11/d12/d13/d14/d15/d16/d17/d18/d19/d20/d21/d22/d23/d24/bottom"] != nil)
        #expect(found == fixture.expected)
    }
}
