import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

/// Images made by xorriso, then changed the way a hostile or damaged image would be:
/// directories that loop back to the root or through relocation, extents beyond the
/// image, absurd sizes, continuation areas that point at themselves, multi-extent chains
/// that break off, and seeded random corruption of every metadata sector. The reader must
/// answer with data or a `WispError`, never trap or hang. A multi-extent file (which
/// needs a 4 GiB file to make honestly) is made by splitting a record in two, and judged
/// by xorriso's extraction.
@Suite("ISO 9660 hostile input", .serialized)
struct ISO9660HostileTests {
    /// A small Rock Ridge tree whose ISO identifiers are known: LOOPDIR/, BIG.BIN, a name
    /// long enough to need a continuation area, and a tree deep enough to be relocated.
    static func makeImage(relocating: Bool = false) throws -> (dir: TemporaryDirectory, path: String, bytes: [UInt8]) {
        let dir = try TemporaryDirectory("iso-hostile")
        let tree = dir.file("tree")
        var random = SplitMix64(seed: 2121)
        try FileManager.default.createDirectory(atPath: tree + "/LOOPDIR/INNER", withIntermediateDirectories: true)
        try Data(random.bytes(6000)).write(to: URL(fileURLWithPath: tree + "/BIG.BIN"))
        try Data("small\n".utf8).write(to: URL(fileURLWithPath: tree + "/LOOPDIR/INNER/SMALL.TXT"))
        try Data("long\n".utf8).write(to: URL(fileURLWithPath: tree + "/" + String(repeating: "n", count: 220)))
        let deep = (1...10).map { "D\($0)" }.joined(separator: "/")
        try FileManager.default.createDirectory(atPath: tree + "/" + deep, withIntermediateDirectories: true)
        try Data("deep\n".utf8).write(to: URL(fileURLWithPath: tree + "/" + deep + "/LEAF.TXT"))
        let path = dir.file("base.iso")
        if relocating {
            try ToolRunner.check("xorriso", ["-compliance", "deep_paths_off:long_paths_off", "-rr_reloc_dir", "RR_MOVED",
                                             "-outdev", path, "-map", tree, "/"])
        } else {
            try ToolRunner.check("xorriso", ["-as", "mkisofs", "-R", "-J", "-o", path, tree])
        }
        return (dir, path, Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    /// Offsets of primary-volume records whose identifier is `name`, found by byte search
    /// (independent of the reader under test).
    static func records(named name: String, in bytes: [UInt8]) -> [Int] {
        let id = Array(name.utf8)
        var found: [Int] = []
        var i = 33
        while i + id.count <= bytes.count {
            if bytes[i] == id[0], Array(bytes[i..<(i + id.count)]) == id, bytes[i - 1] == UInt8(id.count), bytes[i - 33] >= 34 {
                found.append(i - 33)
            }
            i += 1
        }
        return found
    }

    static func putBoth32(_ bytes: inout [UInt8], _ at: Int, _ value: UInt32) {
        bytes.putLE32(value, at: at)
        bytes.putBE32(value, at: at + 4)
    }

    static func le32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }

    static func reader(_ bytes: [UInt8], in dir: TemporaryDirectory, name: String) throws -> ISO9660Reader {
        let path = dir.file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return try ISO9660Reader(device: try FileBlockDevice(path: path))
    }

    static func expectCorrupt(_ body: () throws -> Void, _ what: String) {
        do {
            try body()
            Issue.record("\(what): no error")
        } catch let error as WispError {
            #expect(error.kind == .corrupt, "\(what): \(error.kind) \(error.message)")
        } catch {
            Issue.record("\(what): not a WispError: \(error)")
        }
    }

    static func rootLBA(_ bytes: [UInt8]) -> UInt32 { le32(bytes, 16 * 2048 + 156 + 2) }

    @Test func multiExtentFileReadsAsXorrisoExtractsIt() throws {
        let (dir, _, original) = try Self.makeImage()
        var bytes = original
        let offsets = Self.records(named: "BIG.BIN;1", in: bytes)
        try #require(offsets.count == 1)
        let r = offsets[0]
        let length = Int(bytes[r])
        let lba = Self.le32(bytes, r + 2)
        #expect(Self.le32(bytes, r + 10) == 6000)
        // Second part: the same record (identifier and Rock Ridge entries, as libisofs
        // writes every part) for the rest of the data.
        var part = Array(bytes[r..<(r + length)])
        Self.putBoth32(&part, 2, lba + 2)
        Self.putBoth32(&part, 10, 6000 - 4096)
        part[25] = 0
        // First part: flagged to continue, two sectors long.
        Self.putBoth32(&bytes, r + 10, 4096)
        bytes[r + 25] |= 0x80
        let sectorEnd = (r / 2048 + 1) * 2048
        var used = r + length
        while used < sectorEnd, bytes[used] != 0 { used += Int(bytes[used]) }
        try #require(sectorEnd - used >= part.count, "no room in the directory sector")
        bytes.replaceSubrange((r + length)..<used, with: part + Array(bytes[(r + length)..<used]))
        bytes.removeSubrange((used + part.count)..<(used + part.count + part.count))
        #expect(bytes.count == original.count)
        let path = dir.file("multi.iso")
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let fs = try ISO9660Reader(device: try FileBlockDevice(path: path))
        let inode = try fs.resolve("/BIG.BIN").inode
        #expect(try fs.stat(inode: inode).size == 6000)
        let original6000 = try ISO9660Reader(device: try FileBlockDevice(path: dir.file("base.iso"))).readFile("/BIG.BIN")
        #expect(try fs.readFile("/BIG.BIN") == original6000)
        #expect(try fs.read(inode: inode, offset: 4000, count: 500) == Array(original6000[4000..<4500]))
        // The entry is listed once, not once per part.
        #expect(try fs.list(directory: fs.rootInode).filter { $0.name == "BIG.BIN" }.count == 1)
        let fixture = try ISOFixture()
        try ISO9660ReaderTests.expectSame(fs, as: try fixture.extracted(path))
        // A chain whose next record is not a part of the same file is corrupt.
        var broken = bytes
        broken[r + length + 33] = UInt8(ascii: "X")
        let brokenFS = try Self.reader(broken, in: dir, name: "broken-multi.iso")
        Self.expectCorrupt({ _ = try brokenFS.stat(inode: inode) }, "broken multi-extent chain")
    }

    @Test func directoryPointingAtTheRootIsRefused() throws {
        let (dir, _, original) = try Self.makeImage()
        var bytes = original
        let loop = Self.records(named: "LOOPDIR", in: bytes)
        try #require(loop.count == 1)
        Self.putBoth32(&bytes, loop[0] + 2, Self.rootLBA(bytes))
        let fs = try Self.reader(bytes, in: dir, name: "loop.iso")
        Self.expectCorrupt({ _ = try fs.list(directory: fs.rootInode) }, "a directory record naming the root")
        Self.expectCorrupt({ _ = try fs.resolve("/LOOPDIR/LOOPDIR/LOOPDIR") }, "resolving through the loop")

        // A directory naming its own subdirectory's extent (a cross-link, two ways in).
        var cross = original
        let inner = Self.records(named: "INNER", in: cross)
        try #require(inner.count == 1)
        Self.putBoth32(&cross, loop[0] + 2, Self.le32(cross, inner[0] + 2))
        let crossFS = try Self.reader(cross, in: dir, name: "cross.iso")
        Self.expectCorrupt({ _ = try crossFS.list(directory: crossFS.rootInode) }, "a cross-linked directory")
    }

    @Test func relocationLoopsAreRefused() throws {
        let (dir, _, original) = try Self.makeImage(relocating: true)
        let clean = try Self.reader(original, in: dir, name: "clean.iso")
        #expect(try clean.readFile("/D1/D2/D3/D4/D5/D6/D7/D8/D9/D10/LEAF.TXT") == Array("deep\n".utf8))
        // Every CL entry (signature, length 12, version 1) pointed back at the root.
        var bytes = original
        var patched = 0
        for i in 0..<(bytes.count - 12) where bytes[i] == 0x43 && bytes[i + 1] == 0x4C && bytes[i + 2] == 12 && bytes[i + 3] == 1 {
            Self.putBoth32(&bytes, i + 4, Self.rootLBA(bytes))
            patched += 1
        }
        try #require(patched > 0, "xorriso relocated nothing")
        let fs = try Self.reader(bytes, in: dir, name: "cl-loop.iso")
        Self.expectCorrupt({ _ = try fs.resolve("/D1/D2/D3/D4/D5/D6/D7/D8/D9/D10/LEAF.TXT") }, "CL naming the root")
        // PL entries rewritten to claim the parent is elsewhere.
        var pl = original
        for i in 0..<(pl.count - 12) where pl[i] == 0x50 && pl[i + 1] == 0x4C && pl[i + 2] == 12 && pl[i + 3] == 1 {
            Self.putBoth32(&pl, i + 4, Self.rootLBA(pl))
        }
        let plFS = try Self.reader(pl, in: dir, name: "pl.iso")
        Self.expectCorrupt({ _ = try plFS.resolve("/D1/D2/D3/D4/D5/D6/D7/D8/D9/D10/LEAF.TXT") }, "PL naming another parent")
    }

    @Test func extentsAndSizesBeyondTheImageAreRefused() throws {
        let (dir, _, original) = try Self.makeImage()
        var bytes = original
        let big = Self.records(named: "BIG.BIN;1", in: bytes)[0]
        Self.putBoth32(&bytes, big + 2, 0x7FFF_FFF0)
        let fs = try Self.reader(bytes, in: dir, name: "far.iso")
        let inode = try fs.resolve("/BIG.BIN").inode
        #expect(try fs.stat(inode: inode).size == 6000)
        Self.expectCorrupt({ _ = try fs.read(inode: inode, offset: 0, count: 10) }, "an extent past the end")

        // A directory claiming 4 GiB.
        var huge = original
        let loop = Self.records(named: "LOOPDIR", in: huge)[0]
        let dot = Int(Self.le32(huge, loop + 2)) * 2048
        Self.putBoth32(&huge, dot + 10, 0xFFFF_FFFF)
        let hugeFS = try Self.reader(huge, in: dir, name: "huge.iso")
        Self.expectCorrupt({ _ = try hugeFS.list(directory: hugeFS.resolve("/LOOPDIR").inode) }, "a 4 GiB directory")

        // The image cut short: the file data is gone, the tree is still there.
        let cut = Array(original.prefix(Int(Self.le32(original, big + 2)) * 2048 + 100))
        let cutFS = try Self.reader(cut, in: dir, name: "cut.iso")
        Self.expectCorrupt({ _ = try cutFS.readFile("/BIG.BIN") }, "a truncated image")
    }

    @Test func continuationAreaPointingAtItselfIsBounded() throws {
        let (dir, _, original) = try Self.makeImage()
        var bytes = original
        var patched = 0
        // Each CE entry (length 28) made to name the area that holds it.
        for i in 0..<(bytes.count - 28) where bytes[i] == 0x43 && bytes[i + 1] == 0x45 && bytes[i + 2] == 28 && bytes[i + 3] == 1 {
            Self.putBoth32(&bytes, i + 4, UInt32(i / 2048))
            Self.putBoth32(&bytes, i + 12, UInt32(i % 2048))
            Self.putBoth32(&bytes, i + 20, 28)
            patched += 1
        }
        try #require(patched > 0, "xorriso wrote no continuation area")
        // The root's own "." record carries one: the image is refused as it is opened.
        Self.expectCorrupt({
            let fs = try Self.reader(bytes, in: dir, name: "ce-loop.iso")
            _ = try fs.list(directory: fs.rootInode)
        }, "a self-referencing CE")
    }

    @Test func seededCorruptionGivesDataOrAWispError() throws {
        let (dir, path, original) = try Self.makeImage(relocating: true)
        let base = try FileBlockDevice(path: path)
        let expected = try ReaderTreeJudge.walk(try ISO9660Reader(device: base))
        // Metadata: the descriptors, path tables, directories and continuation areas all
        // lie before the first file's data.
        let firstData = Int(Self.le32(original, Self.records(named: "BIG.BIN;1", in: original)[0] + 2)) * 2048
        var counts = (same: 0, different: 0, error: 0)
        var generator = SplitMix64(seed: 21_000)
        for seed in 0..<300 {
            var patches: [UInt64: UInt8] = [:]
            for _ in 0..<(1 + Int(generator.next() % 8)) {
                let at = 16 * 2048 + Int(generator.next() % UInt64(firstData - 16 * 2048))
                patches[UInt64(at)] = UInt8(truncatingIfNeeded: generator.next())
            }
            let device = PatchedBlockDevice(base: base, patches: patches)
            switch ReaderTreeJudge.outcome(expected: expected, xattrs: [:], open: { try ISO9660Reader(device: device) }) {
            case .same: counts.same += 1
            case .different: counts.different += 1
            case .wispError: counts.error += 1
            case .otherError(let message): Issue.record("seed \(seed): not a WispError: \(message)")
            }
        }
        #expect(counts.same + counts.different + counts.error == 300)
        #expect(counts.error > 0, "no corruption was ever detected: \(counts)")
        _ = dir
    }
}
