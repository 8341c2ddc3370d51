import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

/// Everything a walk of the filesystem sees, to compare a damaged image with the intact one.
struct Ext4Snapshot: Equatable {
    var entries: [String: String] = [:]

    /// Lists every directory (once each: a damaged image may loop), stats everything, reads
    /// every file (at most 4 MiB of each), every link target and every attribute.
    static func take(_ fs: any FileSystem) throws -> Ext4Snapshot {
        var snapshot = Ext4Snapshot()
        var seenDirectories: Set<UInt64> = []
        var pending: [(String, UInt64)] = [("", fs.rootInode)]
        while let (path, inode) = pending.popLast() {
            guard seenDirectories.insert(inode).inserted else { continue }
            for entry in try fs.list(directory: inode).sorted(by: { $0.name < $1.name }) {
                let child = path + "/" + entry.name
                let info = try fs.stat(inode: entry.inode)
                var description = "\(info.type) \(String(info.mode, radix: 8)) \(info.uid):\(info.gid) \(info.size) \(info.linkCount) \(info.modificationTime.seconds)"
                description += " xattrs=\(try fs.xattrs(inode: entry.inode).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })"
                switch info.type {
                case .directory:
                    pending.append((child, entry.inode))
                case .symlink:
                    description += " -> " + (try fs.readlink(inode: entry.inode))
                case .regular:
                    var offset: UInt64 = 0
                    var hasher = Hasher()
                    let limit = min(info.size, 4 << 20)
                    while offset < limit {
                        let chunk = try fs.read(inode: entry.inode, offset: offset, count: Int(min(limit - offset, 1 << 20)))
                        guard !chunk.isEmpty else { break }
                        hasher.combine(chunk)
                        offset += UInt64(chunk.count)
                    }
                    description += " data=\(hasher.finalize()) read=\(offset)"
                default:
                    description += " dev=\(info.deviceMajor):\(info.deviceMinor)"
                }
                snapshot.entries[child] = description
            }
        }
        return snapshot
    }
}

@Suite struct Ext4HostileTests {
    /// A small fixture with something of everything: an htree directory, fast and slow
    /// symlinks, an attribute block, inline-sized files, and a fragmented file whose extent
    /// tree has index blocks.
    static func smallFixture(in dir: TemporaryDirectory, checksums: Bool, extents: Bool = true) throws -> String {
        let source = dir.file("tree")
        try Ext4SourceTree.build(at: source, options: .init(wide: false, deep: false, specials: true, xattrs: true,
                                                            bigFiles: false, sparse: false))
        try Ext4SourceTree.mkdir("\(source)/many")
        for i in 0..<150 { try Ext4SourceTree.write("\(source)/many/file-number-\(i)", Array("\(i)".utf8)) }
        try Ext4SourceTree.mkdir("\(source)/frag")
        for i in 0..<200 { try Ext4SourceTree.write("\(source)/frag/f\(i)", [UInt8](repeating: 0x62, count: 1000)) }
        let image = dir.file("small.img")
        var features = [checksums ? "metadata_csum" : "^metadata_csum", "^has_journal"]
        if !extents { features += ["^extent", "^64bit", "^flex_bg", "^huge_file"] }
        try Ext4Fixture.make(image: image, from: source, sizeMiB: 4,
                             arguments: ["-b", "1024", "-N", "512", "-O", features.joined(separator: ",")])
        var rng = SplitMix64(seed: 3)
        try Ext4SourceTree.write(dir.file("fragmented"), rng.bytes(120_000))
        let commands = (0..<200).filter { $0 % 2 == 0 }.map { "rm /frag/f\($0)" }
            + ["write \(dir.file("fragmented")) /fragmented"]
        try Ext4SourceTree.write(dir.file("cmds"), Array(commands.joined(separator: "\n").utf8))
        try ToolRunner.check("debugfs", ["-w", "-f", dir.file("cmds"), image])
        try Ext4Fixture.indexDirectories(image)
        return image
    }

    static func bytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func reader(_ image: [UInt8], _ patches: [Int: UInt8] = [:]) throws -> Ext4Reader {
        let changes = Dictionary(uniqueKeysWithValues: patches.map { (UInt64($0.key), $0.value) })
        return try Ext4Reader(device: PatchedBlockDevice(
            base: MemoryBlockDevice(name: "corrupted.img", bytes: image), patches: changes))
    }

    /// Expects `body` to throw a WispError whose message contains `fragment`.
    static func expectWispError(_ fragment: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
                                _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("\(what): no error", sourceLocation: sourceLocation)
        } catch let error as WispError {
            #expect(error.message.contains(fragment), "\(what): \(error.message)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(what): not a WispError: \(error)", sourceLocation: sourceLocation)
        }
    }

    static func le16(_ value: UInt16, at offset: Int) -> [Int: UInt8] {
        [offset: UInt8(truncatingIfNeeded: value), offset + 1: UInt8(truncatingIfNeeded: value >> 8)]
    }

    static func le32(_ value: UInt32, at offset: Int) -> [Int: UInt8] {
        var out: [Int: UInt8] = [:]
        for i in 0..<4 { out[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
        return out
    }

    /// Patches superblock fields and re-signs it, so the field checks (not the checksum)
    /// are what reject it.
    static func superblockPatch(_ image: [UInt8], _ fields: [Int: UInt8]) -> [Int: UInt8] {
        var sb = Array(image[1024..<2048])
        for (offset, byte) in fields { sb[offset] = byte }
        var patches: [Int: UInt8] = [:]
        for (i, byte) in sb.enumerated() { patches[1024 + i] = byte }
        let crc = CRC32C.raw(sb[0..<0x3FC], seed: 0xFFFF_FFFF)
        patches.merge(le32(crc, at: 1024 + 0x3FC)) { $1 }
        return patches
    }

    @Test func corruptSuperblocks() throws {
        let dir = try TemporaryDirectory("wisp-ext4-hostile-sb")
        let image = try Self.bytes(try Self.smallFixture(in: dir, checksums: true))
        _ = try Self.reader(image)
        let cases: [(String, String, [Int: UInt8])] = [
            ("magic", "magic", Self.le16(0x1234, at: 0x38)),
            ("log block size 7", "log block size", Self.le32(7, at: 0x18)),
            ("inode size 100", "inode size", Self.le16(100, at: 0x58)),
            ("block count past the device", "do not fit", Self.le32(0xFFFF_FFF0, at: 0x4)),
            ("inode count inconsistent", "inode count", Self.le32(12345, at: 0x0)),
            ("zero blocks per group", "blocks per group", Self.le32(0, at: 0x20)),
            ("zero inodes per group", "inodes per group", Self.le32(0, at: 0x28)),
            ("unknown incompatible feature", "unknown feature 0x80000000", Self.le32(0x8000_02C2 | 0x400, at: 0x60)),
            ("compression", "compression", Self.le32(0x2C3, at: 0x60)),
            ("descriptor size 48", "descriptor size", Self.le16(48, at: 0xFE)),
            ("first data block", "first data block", Self.le32(7, at: 0x14)),
            ("revision 5", "revision", Self.le32(5, at: 0x4C)),
            ("first inode 3", "first non-reserved inode", Self.le32(3, at: 0x54)),
        ]
        for (what, fragment, fields) in cases {
            Self.expectWispError(fragment, what) { _ = try Self.reader(image, Self.superblockPatch(image, fields)) }
        }
        Self.expectWispError("superblock checksum mismatch", "unsigned change") {
            _ = try Self.reader(image, [1024 + 0x78: 0x58])
        }
        Self.expectWispError("too small", "truncated device") {
            _ = try Ext4Reader(device: MemoryBlockDevice(name: "tiny", bytes: Array(image[0..<1500])))
        }
        Self.expectWispError("do not fit", "truncated filesystem") {
            _ = try Ext4Reader(device: MemoryBlockDevice(name: "short", bytes: Array(image[0..<(image.count / 2)])))
        }
    }

    @Test func corruptGroupDescriptorsAndInodes() throws {
        let dir = try TemporaryDirectory("wisp-ext4-hostile-gd")
        let csumImage = try Self.bytes(try Self.smallFixture(in: dir, checksums: true))
        // Descriptor table is at block 2 with 1 KiB blocks.
        Self.expectWispError("group descriptor 0", "descriptor checksum") { _ = try Self.reader(csumImage, [2048 + 4: 0xAA]) }
        let csum = try Self.reader(csumImage)
        let rootOffset = Int(try csum.inode(2).offset)
        Self.expectWispError("inode 2", "root inode checksum") { _ = try Self.reader(csumImage, [rootOffset + 0x10: 0x01]) }

        let plainDir = try TemporaryDirectory("wisp-ext4-hostile-gd-plain")
        let image = try Self.bytes(try Self.smallFixture(in: plainDir, checksums: false))
        let fs = try Self.reader(image)
        let blocks = UInt32(fs.superblock.blocksCount)
        Self.expectWispError("inode table", "inode table past the end") { _ = try Self.reader(image, Self.le32(blocks + 5, at: 2048 + 8)) }
        Self.expectWispError("inode table", "inode table at block 0") { _ = try Self.reader(image, Self.le32(0, at: 2048 + 8)) }

        func offset(_ path: String) throws -> Int { Int(try fs.inode(try fs.resolve(path, followFinalSymlink: false).inode).offset) }
        func open(_ patches: [Int: UInt8]) throws -> Ext4Reader { try Self.reader(image, patches) }
        let file = try offset("/size-4097")
        let fileInode = try fs.resolve("/size-4097").inode
        Self.expectWispError("extra inode size", "odd extra isize") {
            _ = try open(Self.le16(3, at: file + 0x80)).stat(inode: fileInode)
        }
        Self.expectWispError("limit", "absurd file size read whole") {
            _ = try open(Self.le32(0x7FFF_FFFF, at: file + 0x6C)).readFile("/size-4097")
        }
        // A size no ext4 file can have is corrupt, not a sparse tail to stream (issue 16).
        let absurd = try open(Self.le32(0x7FFF_FFFF, at: file + 0x6C))
        Self.expectWispError("exceeds the largest file this filesystem can hold", "absurd file size read in ranges") {
            _ = try absurd.read(inode: fileInode, offset: 1 << 50, count: 16)
        }
        let directory = try offset("/many")
        let directoryInode = try fs.resolve("/many").inode
        Self.expectWispError("exceeds", "absurd directory size") {
            _ = try open(Self.le32(0x100, at: directory + 0x6C)).list(directory: directoryInode)
        }
        let slowLink = try offset("/link-300")
        let slowLinkInode = try fs.resolve("/link-300", followFinalSymlink: false).inode
        Self.expectWispError("longer than a block", "absurd symlink size") {
            _ = try open(Self.le32(5000, at: slowLink + 4)).readlink(inode: slowLinkInode)
        }
        let fastLink = try offset("/link-short")
        let fastLinkInode = try fs.resolve("/link-short", followFinalSymlink: false).inode
        Self.expectWispError("exceeds", "fast symlink longer than i_block") {
            _ = try open(Self.le32(61, at: fastLink + 4)).readlink(inode: fastLinkInode)
        }
        Self.expectWispError("does not exist", "inode 0") { _ = try fs.stat(inode: 0) }
        Self.expectWispError("does not exist", "inode past the end") { _ = try fs.stat(inode: UInt64(fs.superblock.inodesCount) + 1) }
        // A regular file whose mode says directory: its bytes are not directory entries.
        Self.expectWispError("directory", "file posing as a directory") {
            _ = try open(Self.le16(0o40755, at: try offset("/size-4097"))).list(directory: fileInode)
        }
    }

    @Test func corruptExtentTrees() throws {
        let dir = try TemporaryDirectory("wisp-ext4-hostile-extents")
        let image = try Self.bytes(try Self.smallFixture(in: dir, checksums: false))
        let fs = try Self.reader(image)
        let inode = try fs.resolve("/fragmented").inode
        let base = Int(try fs.inode(inode).offset) + 0x28
        #expect(try fs.readFile("/fragmented").count == 120_000)
        func read(_ patches: [Int: UInt8]) throws { _ = try Self.reader(image, patches).read(inode: inode, offset: 0, count: 120_000) }
        Self.expectWispError("magic", "root magic") { try read(Self.le16(0xF30B, at: base)) }
        Self.expectWispError("room for", "entries > max") { try read(Self.le16(5, at: base + 2)) }
        Self.expectWispError("capacity", "max > what i_block holds") { try read(Self.le16(5, at: base + 4)) }
        Self.expectWispError("depth", "depth 6") { try read(Self.le16(6, at: base + 6)) }

        let rootDepth = Int(image[base + 6]) | Int(image[base + 7]) << 8
        #expect(rootDepth >= 1, "the fragmented file has index blocks")
        let child = Int(image[base + 16]) | Int(image[base + 17]) << 8 | Int(image[base + 18]) << 16 | Int(image[base + 19]) << 24
        Self.expectWispError("outside", "index past the end") { try read(Self.le32(UInt32(fs.superblock.blocksCount), at: base + 16)) }
        // The first index block: make its entries lie.
        let node = child * 1024
        Self.expectWispError("depth", "child claims the parent's depth") { try read(Self.le16(UInt16(rootDepth), at: node + 6)) }
        Self.expectWispError("length 0", "zero-length extent") { try read(Self.le16(0, at: node + 12 + 4)) }
        Self.expectWispError("outside", "extent past the end") { try read(Self.le32(UInt32(fs.superblock.blocksCount), at: node + 12 + 8)) }
        Self.expectWispError("overlapping", "extents out of order") { try read(Self.le32(100_000, at: node + 12)) }
        // A cycle: an index in the root pointing twice at the same block, and a node that
        // claims to be an index pointing at itself.
        var cycle = Self.le32(UInt32(child), at: base + 12 + 12 + 4)
        cycle.merge(Self.le32(1, at: base + 12 + 12)) { $1 }
        cycle.merge(Self.le16(2, at: base + 2)) { $1 }
        Self.expectWispError("a second time", "two indexes, one block") { try read(cycle) }
        var selfLoop = Self.le16(UInt16(rootDepth + 1), at: base + 6)
        selfLoop.merge(Self.le16(UInt16(rootDepth), at: node + 6)) { $1 }
        selfLoop.merge(Self.le32(UInt32(child), at: node + 12 + 4)) { $1 }
        selfLoop.merge(Self.le16(0, at: node + 12 + 8)) { $1 }
        Self.expectWispError("a second time", "index block pointing at itself") { try read(selfLoop) }

        // With checksums, the same damage is caught by the tail first.
        let csumDir = try TemporaryDirectory("wisp-ext4-hostile-extents-csum")
        let csumImage = try Self.bytes(try Self.smallFixture(in: csumDir, checksums: true))
        let csum = try Self.reader(csumImage)
        let csumInode = try csum.resolve("/fragmented").inode
        let csumBase = Int(try csum.inode(csumInode).offset) + 0x28
        let csumChild = Int(csumImage[csumBase + 16]) | Int(csumImage[csumBase + 17]) << 8 | Int(csumImage[csumBase + 18]) << 16
        Self.expectWispError("extent block checksum mismatch", "extent tail") {
            _ = try Self.reader(csumImage, [csumChild * 1024 + 20: 0x7F]).read(inode: csumInode, offset: 0, count: 10)
        }
    }

    @Test func corruptDirectoryEntriesAndAttributes() throws {
        let dir = try TemporaryDirectory("wisp-ext4-hostile-dirs")
        let image = try Self.bytes(try Self.smallFixture(in: dir, checksums: false, extents: false))
        let fs = try Self.reader(image)
        let directory = try fs.resolve("/dir").inode
        let block = Int(try fs.fileRuns(try fs.inode(directory)).first?.physical ?? 0) * 1024
        #expect(block > 0)
        func list(_ patches: [Int: UInt8]) throws { _ = try Self.reader(image, patches).list(directory: directory) }
        Self.expectWispError("length is 0", "rec_len 0") { try list(Self.le16(0, at: block + 4)) }
        Self.expectWispError("runs past", "rec_len past the block") { try list(Self.le16(1028, at: block + 4)) }
        Self.expectWispError("multiple of 4", "rec_len 13") { try list(Self.le16(13, at: block + 4)) }
        Self.expectWispError("does not fit", "name_len > rec_len") { try list([block + 6: 200]) }
        Self.expectWispError("past the last inode", "entry naming a missing inode") { try list(Self.le32(0xFFFF_FF00, at: block)) }
        // The second entry (".." at offset 12) pointing at inode 0 is skipped; at inode 1 it is listed.
        #expect(try Self.reader(image, Self.le32(0, at: block + 12)).list(directory: directory).count == 3)

        let file = try fs.resolve("/xattr-big").inode
        let attributeBlock = Int(try fs.inode(file).fileACL) * 1024
        #expect(attributeBlock > 0, "xattr-big spills into an attribute block")
        func attributes(_ patches: [Int: UInt8]) throws { _ = try Self.reader(image, patches).xattrs(inode: file) }
        Self.expectWispError("magic", "attribute block magic") { try attributes([attributeBlock: 0x01]) }
        Self.expectWispError("lies outside", "value offset past the block") { try attributes(Self.le16(1020, at: attributeBlock + 32 + 2)) }
        Self.expectWispError("ext4", "garbage name length") { try attributes([attributeBlock + 32: 255, attributeBlock + 32 + 2: 0, attributeBlock + 33: 1]) }

        // With checksums: the directory leaf tail, the htree tail and the attribute block.
        let csumDir = try TemporaryDirectory("wisp-ext4-hostile-dirs-csum")
        let csumImage = try Self.bytes(try Self.smallFixture(in: csumDir, checksums: true))
        let csum = try Self.reader(csumImage)
        let many = try csum.inode(try csum.resolve("/many").inode)
        #expect(many.isHashIndexed)
        let manyRuns = try csum.fileRuns(many)
        let root = Int(manyRuns[0].physical) * 1024
        Self.expectWispError("htree block checksum mismatch", "dx root") {
            _ = try Self.reader(csumImage, [root + 40: csumImage[root + 40] ^ 0xFF]).list(directory: UInt64(many.number))
        }
        guard let leafRun = manyRuns.first(where: { $0.logicalEnd > 1 }) else { Issue.record("no leaf"); return }
        let leaf = Int(leafRun.physical + (1 - leafRun.logical)) * 1024
        Self.expectWispError("directory block checksum mismatch", "leaf") {
            _ = try Self.reader(csumImage, [leaf + 9: csumImage[leaf + 9] ^ 0x20]).list(directory: UInt64(many.number))
        }
        Self.expectWispError("no checksum tail", "leaf without a tail") {
            _ = try Self.reader(csumImage, [leaf + 1024 - 5: 0]).list(directory: UInt64(many.number))
        }
        let csumFile = try csum.inode(try csum.resolve("/xattr-big").inode)
        Self.expectWispError("extended attribute block checksum mismatch", "attribute block") {
            _ = try Self.reader(csumImage, [Int(csumFile.fileACL) * 1024 + 40: 0x33]).xattrs(inode: UInt64(csumFile.number))
        }
    }

    /// The metadata blocks of a fixture: superblock, descriptors, the inode table blocks
    /// in use, directory blocks, extent index blocks (as debugfs reports them) and
    /// attribute blocks.
    static func metadataBlocks(_ fs: Ext4Reader, image: String) throws -> (blocks: [UInt64], indexBlocks: Int) {
        var blocks: Set<UInt64> = [1, fs.superblock.descriptorBlockLocation(0)]
        var pending: [UInt64] = [fs.rootInode]
        var seen: Set<UInt64> = []
        var regularFiles: [UInt64] = []
        while let directory = pending.popLast() {
            guard seen.insert(directory).inserted else { continue }
            let inode = try fs.inode(directory)
            blocks.insert(inode.offset / 1024)
            for run in try fs.fileRuns(inode) { for b in run.physical..<(run.physical + run.length) { blocks.insert(b) } }
            for entry in try fs.list(directory: directory) {
                let child = try fs.inode(entry.inode)
                blocks.insert(child.offset / 1024)
                if child.fileACL != 0 { blocks.insert(child.fileACL) }
                if child.type == .directory { pending.append(entry.inode) }
                if child.type == .regular { regularFiles.append(entry.inode) }
            }
        }
        // Extent index and indirect blocks as debugfs sees them, in one debugfs run.
        let commands = regularFiles.map { "stat <\($0)>" }.joined(separator: "\n")
        let dir = try TemporaryDirectory("wisp-ext4-debugfs")
        try Ext4SourceTree.write(dir.file("cmds"), Array(commands.utf8))
        let stats = try ToolRunner.check("debugfs", ["-f", dir.file("cmds"), image]).stdoutText
        var indexBlocks = 0
        for match in stats.matches(of: /\((?:ETB\d+|IND|DIND|TIND)\):(\d+)/) {
            if let b = UInt64(match.1) { blocks.insert(b) }
            indexBlocks += 1
        }
        return (blocks.sorted(), indexBlocks)
    }

    static func seededCorruption(checksums: Bool, extents: Bool, seeds: Range<UInt64>) throws {
        let dir = try TemporaryDirectory("wisp-ext4-seeded")
        let path = try smallFixture(in: dir, checksums: checksums, extents: extents)
        let image = try bytes(path)
        let intact = try reader(image)
        let expected = try Ext4Snapshot.take(intact)
        #expect(expected.entries.count > 250)
        let (metadata, indexBlocks) = try metadataBlocks(intact, image: path)
        #expect(metadata.count > 20)
        #expect(indexBlocks > 0, "the fixture has extent index or indirect blocks to damage")
        var outcomes = (errors: 0, intact: 0)
        let started = ContinuousClock.now
        for seed in seeds {
            var rng = SplitMix64(seed: seed)
            let block = metadata[Int(rng.next() % UInt64(metadata.count))]
            var patches: [Int: UInt8] = [:]
            for _ in 0...(rng.next() % 4) {
                let position = Int(block) * 1024 + Int(rng.next() % 1024)
                patches[position] = image[position] ^ UInt8(truncatingIfNeeded: rng.next() % 255 + 1)
            }
            do {
                let fs = try reader(image, patches)
                let seen = try Ext4Snapshot.take(fs)
                if checksums {
                    #expect(seen == expected, "seed \(seed): block \(block) damaged without an error, yet the walk differs")
                }
                outcomes.intact += 1
            } catch is WispError {
                outcomes.errors += 1
            } catch {
                Issue.record("seed \(seed): block \(block): not a WispError: \(error)")
            }
        }
        if checksums {
            #expect(outcomes.errors > seeds.count / 2, "most damage is detected: \(outcomes)")
        }
        #expect(outcomes.errors + outcomes.intact == seeds.count)
        #expect(ContinuousClock.now - started < .seconds(60))
    }

    @Test func seededCorruptionWithChecksumsGivesCorrectDataOrAnError() throws {
        try Self.seededCorruption(checksums: true, extents: true, seeds: 0..<250)
    }

    @Test func seededCorruptionWithoutChecksumsNeverCrashesOrHangs() throws {
        try Self.seededCorruption(checksums: false, extents: false, seeds: 1000..<1250)
    }
}
