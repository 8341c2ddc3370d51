import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

/// Reads every path of btrfs images made by mkfs.btrfs --rootdir (and btrfs-convert) from
/// a generated tree and compares bytes, mode, ownership, size, link targets, device
/// numbers, hard links and xattrs with the source.
@Suite("BtrfsReader", .serialized)
struct BtrfsReaderTests {
    static func compare(_ fixture: BtrfsFixture, _ fs: BtrfsReader, ignoring: Set<String> = []) throws {
        var found = try ReaderTreeJudge.walk(fs)
        for path in found.keys where ignoring.contains(where: { path == $0 || path.hasPrefix($0 + "/") }) { found[path] = nil }
        try ReaderTreeJudge.expectTree(found, in: fs, expected: fixture.expected, xattrs: fixture.expectedXattrs)
        for group in fixture.hardLinks {
            let inodes = try Set(group.map { try fs.resolve($0).inode })
            #expect(inodes.count == 1, "hard links \(group) resolve to \(inodes)")
            #expect(try fs.stat(path: group[0]).linkCount == UInt32(group.count))
        }
        #expect(try fs.readFile("/abs-link/d3/d4/d5/d6/d7/d8/d9/d10/d11/d12/d13/d14/d15/d16/d17/d18/d19/d20/d21/d22/d23/d24/bottom")
                == Array("bottom of the tree\n".utf8))
        // Ranged reads across extent and hole boundaries.
        if case .file(let content, _, _, _) = fixture.expected["/sparse"] {
            let inode = try fs.resolve("/sparse").inode
            for (offset, count) in [(0, 10), (8190, 10), (content.count / 2, 9000), (content.count - 5, 100)] {
                let got = try fs.read(inode: inode, offset: UInt64(offset), count: count)
                #expect(got == Array(content[offset..<min(content.count, offset + count)]))
            }
        }
        let now = Int64(Date().timeIntervalSince1970)
        let started = Int64(fixture.mkfsStarted.timeIntervalSince1970)
        for path in ["/size-4-2048", "/deep", "/long-link"] {
            let info = try fs.stat(path: path, followFinalSymlink: false)
            for t in [info.modificationTime, info.changeTime] {
                #expect(t.seconds >= started - 120 && t.seconds <= now + 5, "\(path): time \(t.seconds) not near \(now)")
            }
        }
        #expect(try fs.stat(path: "/deep").linkCount == 1)
        #expect(fs.label == "wisp-btrfs")
        let superDump = try ToolRunner.check("btrfs", ["inspect-internal", "dump-super", fixture.image]).stdoutText
        let fsidLine = superDump.split(separator: "\n").first { $0.hasPrefix("fsid") }
        #expect(fsidLine?.split(separator: "\t").last.map(String.init)?.trimmingCharacters(in: .whitespaces) == fs.uuid)
    }

    @Test("mkfs.btrfs default (16K nodes, dup metadata): every file matches the source")
    func defaultLayout() throws {
        let fixture = try BtrfsFixture()
        let fs = try BtrfsReader(device: try FileBlockDevice(path: fixture.image))
        try Self.compare(fixture, fs)
        #expect(fs.subvolumeID == 5)
        #expect(try fs.subvolumes().isEmpty)
        // The opener picks the btrfs reader by magic.
        let opened = try FileSystemOpener.open(try FileBlockDevice(path: fixture.image))
        #expect(opened.typeName == "btrfs")
        #expect(try opened.readFile("/links/second") == (try fs.readFile("/links/original")))
    }

    @Test("profiles, node and sector sizes", arguments: [
        ["-m", "single", "-d", "single", "-n", "4096"],
        ["-m", "dup", "-d", "dup", "-n", "65536"],
        ["-m", "single", "-d", "dup", "-n", "16384", "-O", "^no-holes"],
        ["-s", "65536", "-n", "65536", "-m", "dup"],
        ["-M"],
    ])
    func profiles(options: [String]) throws {
        let fixture = try BtrfsFixture(options: options, compact: true, directories: BtrfsFixture.compactDirectories)
        try Self.compare(fixture, try BtrfsReader(device: try FileBlockDevice(path: fixture.image)))
    }

    @Test("btrfs-convert: a real subvolume (ext2_saved) by listing, id, path and mount options")
    func convertedSubvolume() throws {
        let fixture = try BtrfsFixture(maker: .convert, compact: true, directories: BtrfsFixture.compactDirectories)
        let device = try FileBlockDevice(path: fixture.image)
        let fs = try BtrfsReader(device: device)
        try Self.compare(fixture, fs, ignoring: ["/ext2_saved", "/lost+found"])
        let subvolumes = try fs.subvolumes()
        #expect(subvolumes == [BtrfsSubvolumeInfo(id: 256, path: "ext2_saved", parentID: 5)])
        // Listing crosses into the nested subvolume; its inode numbers differ from the parent's.
        let saved = try fs.resolve("/ext2_saved")
        #expect(try fs.stat(inode: saved.inode).type == .directory)
        #expect(saved.inode >> 48 != 0 && saved.inode & 0xFFFF_FFFF_FFFF == 256)
        let image = try fs.list(directory: saved.inode)
        #expect(image.map(\.name) == ["image"])
        let imageStat = try fs.stat(path: "/ext2_saved/image")
        #expect(imageStat.size == device.size)
        #expect(imageStat.inode != fs.rootInode)
        // The saved ext4 image is the original filesystem: its superblock magic is there.
        let ext4Magic = try fs.read(inode: fs.resolve("/ext2_saved/image").inode, offset: 1024 + 0x38, count: 2)
        #expect(ext4Magic == [0x53, 0xEF])
        for selector in [BtrfsSubvolumeSelector.id(256), .path("ext2_saved"), .path("/ext2_saved/"),
                         BtrfsSubvolumeSelector.options("rw,relatime,subvol=ext2_saved"),
                         BtrfsSubvolumeSelector.options("subvolid=256,compress=zstd:1")] {
            let sub = try BtrfsReader(device: device, subvolume: selector)
            #expect(sub.subvolumeID == 256)
            #expect(try sub.list(directory: sub.rootInode).map(\.name) == ["image"])
        }
        #expect(try BtrfsReader(device: device, subvolume: .options("subvol=/")).subvolumeID == 5)
        #expect(throws: WispError.self) { try BtrfsReader(device: device, subvolume: .path("nonexistent")) }
        #expect(throws: WispError.self) { try BtrfsReader(device: device, subvolume: .id(999)) }

        // `btrfs subvolume set-default 256` offline: point the root tree directory's
        // "default" entry at subvolume 256 in every copy of its leaf, reseal the checksum.
        let chunks = BtrfsCompressedImageTests.chunks(try fixture.dumpTree(["-t", "chunk"]))
        let rootDump = try fixture.dumpTree(["-t", "root"])
        guard let leafLine = rootDump.split(separator: "\n").first(where: { $0.hasPrefix("leaf ") }),
              let leaf = UInt64(leafLine.split(separator: " ")[1]) else {
            Issue.record("no root tree leaf in dump-tree: \(rootDump.prefix(200))")
            return
        }
        for physical in BtrfsCompressedImageTests.copies(leaf, chunks) {
            var block = try device.read(at: physical, count: Int(fs.sb.nodeSize))
            let r = ByteReader(block, source: "test", structure: "root leaf")
            var patched = false
            for slot in 0..<Int(try r.u32le(96)) {
                let at = 101 + 25 * slot
                guard try r.u64le(at) == 6, try r.u8(at + 8) == BtrfsKey.dirItem else { continue }
                let data = 101 + Int(try r.u32le(at + 17))
                #expect(try r.array(data + 30, 7) == Array("default".utf8))
                block.putLE64(256, at: data)
                patched = true
            }
            #expect(patched)
            block.putLE32(CRC32C.checksum(block[32...]), at: 0)
            try BtrfsCompressedImageTests.write(block, at: physical, in: fixture.image)
        }
        try ToolRunner.check("btrfs", ["check", "--readonly", fixture.image])
        let byDefault = try BtrfsReader(device: try FileBlockDevice(path: fixture.image))
        #expect(byDefault.subvolumeID == 256)
        #expect(try byDefault.list(directory: byDefault.rootInode).map(\.name) == ["image"])
        #expect(try BtrfsReader(device: try FileBlockDevice(path: fixture.image), subvolume: .id(5)).subvolumeID == 5)
    }

    @Test("mount option strings select subvolumes as the kernel does")
    func mountOptions() {
        #expect(BtrfsSubvolumeSelector.options("") == .default)
        #expect(BtrfsSubvolumeSelector.options("compress=zstd:1,defaults") == .default)
        #expect(BtrfsSubvolumeSelector.options("subvol=root") == .path("root"))
        #expect(BtrfsSubvolumeSelector.options("subvol=@/boot,subvolid=260") == .id(260))
        #expect(BtrfsSubvolumeSelector.options("subvolid=0,subvol=home") == .path("home"))
        #expect(BtrfsSubvolumeSelector.options("x-systemd.device-timeout=0,subvol=root,compress=zstd:1") == .path("root"))
    }

    @Test("a bad primary superblock falls back to the 64 MiB mirror")
    func superblockMirror() throws {
        let fixture = try BtrfsFixture(compact: true, directories: BtrfsFixture.compactDirectories)
        let base = try FileBlockDevice(path: fixture.image)
        let patched = PatchedBlockDevice(base: base, patches: [65536 + 0x40: 0])
        let fs = try BtrfsReader(device: patched)
        try Self.compare(fixture, fs)
        // With every copy bad the error names the primary.
        let dead = PatchedBlockDevice(base: base, patches: [65536 + 0x40: 0, (64 << 20) + 0x40: 0])
        #expect(throws: WispError.self) { try BtrfsReader(device: dead) }
    }

    @Test("checksum algorithms other than crc32c are refused clearly", arguments: ["xxhash", "sha256", "blake2"])
    func otherChecksums(csum: String) throws {
        let fixture = try BtrfsFixture(options: ["--csum", csum], compact: true, directories: [("small", 5)])
        do {
            _ = try BtrfsReader(device: try FileBlockDevice(path: fixture.image))
            Issue.record("\(csum) filesystem opened")
        } catch let error as WispError {
            #expect(error.kind == .unsupported && error.message.contains("checksum"), "\(error)")
        }
    }
}
