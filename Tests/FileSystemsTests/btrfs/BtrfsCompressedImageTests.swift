import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

/// Compressed extents inside a real image. btrfs-progs 6.2 cannot write them offline, so
/// the test takes an mkfs.btrfs image, finds three files' EXTENT_DATA items, leaves and
/// chunks with `btrfs inspect-internal dump-tree`, writes each file's bytes compressed by
/// the real tools (python zlib, lzop, zstd) over its data extent, sets the item's
/// compression type and refreshes the leaf checksum: the layout the kernel writes, and
/// `btrfs check --readonly` accepts it. A second step points one extent's offset and
/// length into the middle of its compressed extent, as partial overwrites leave them.
@Suite("Btrfs compressed extents in an image", .serialized)
struct BtrfsCompressedImageTests {
    struct Extent { var leaf: UInt64; var slot: Int; var itemOffset: Int; var diskBytenr: UInt64; var diskBytes: Int }

    /// logical → physical from the chunk tree dump: one entry per stripe (two for dup).
    static func chunks(_ dump: String) -> [(logical: UInt64, length: UInt64, physical: UInt64)] {
        var result: [(UInt64, UInt64, UInt64)] = []
        var logical: UInt64?, length: UInt64?
        for line in dump.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "(" || $0 == ")" })
            if line.contains("CHUNK_ITEM"), let i = words.firstIndex(of: "CHUNK_ITEM") { logical = UInt64(words[i + 1]) }
            if words.first == "length", words.count > 1 { length = UInt64(words[1]) }
            if words.first == "stripe", let i = words.firstIndex(of: "offset"), let l = logical, let n = length,
               let p = UInt64(words[i + 1]) {
                result.append((l, n, p))
            }
        }
        return result
    }

    static func copies(_ logical: UInt64, _ chunks: [(logical: UInt64, length: UInt64, physical: UInt64)]) -> [UInt64] {
        chunks.filter { logical >= $0.logical && logical < $0.logical + $0.length }.map { $0.physical + (logical - $0.logical) }
    }

    static func physical(_ logical: UInt64, _ chunks: [(logical: UInt64, length: UInt64, physical: UInt64)]) throws -> UInt64 {
        guard let c = chunks.first(where: { logical >= $0.logical && logical < $0.logical + $0.length }) else {
            throw WispError.notFound("no chunk holds logical \(logical)")
        }
        return c.physical + (logical - c.logical)
    }

    /// The EXTENT_DATA item of the file called `name` in the fs tree dump.
    static func extent(of name: String, _ dump: String) throws -> Extent {
        let lines = dump.split(separator: "\n").map(String.init)
        var inode: String?
        for (i, line) in lines.enumerated() where i >= 3 && line.hasSuffix("name: \(name)") && lines[i - 3].contains("DIR_INDEX") {
            inode = lines[i - 2].split(separator: "(").dropFirst().first?.split(separator: " ").first.map(String.init)
        }
        guard let inode else { throw WispError.notFound("\(name) not in dump-tree") }
        var leaf: UInt64 = 0
        for (i, line) in lines.enumerated() {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if words.first == "leaf", words.count > 1, let l = UInt64(words[1]) { leaf = l }
            if line.contains("key (\(inode) EXTENT_DATA 0)"), let slot = Int(words[1]),
               let itemoff = words.firstIndex(of: "itemoff").flatMap({ Int(words[$0 + 1]) }) {
                let disk = lines[i + 2].split(separator: " ")
                guard let byteIndex = disk.firstIndex(of: "byte"), let bytenr = UInt64(disk[byteIndex + 1]),
                      let nrIndex = disk.firstIndex(of: "nr"), let nr = Int(disk[nrIndex + 1]) else { break }
                return Extent(leaf: leaf, slot: slot, itemOffset: itemoff, diskBytenr: bytenr, diskBytes: nr)
            }
        }
        throw WispError.notFound("no EXTENT_DATA for \(name) (inode \(inode))")
    }

    static func write(_ bytes: [UInt8], at offset: UInt64, in path: String) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data(bytes))
        try handle.close()
    }

    @Test("zlib, lzo and zstd extents, whole and sliced, read back as the original bytes")
    func compressedExtents() throws {
        let directory = try TemporaryDirectory("wisp-btrfs-compressed")
        let src = directory.file("src")
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        var contents: [String: [UInt8]] = [:]
        for (i, name) in ["zlib.txt", "lzo.txt", "zstd.txt", "plain.txt"].enumerated() {
            contents[name] = BtrfsCompressionTests.sample(60000 + i * 7, seed: UInt64(40 + i))
            try Data(contents[name] ?? []).write(to: URL(fileURLWithPath: "\(src)/\(name)"))
        }
        let image = directory.file("btrfs.img")
        try ToolRunner.check("truncate", ["-s", "128M", image])
        try ToolRunner.check("mkfs.btrfs", ["-f", "-q", "-m", "single", "-n", "4096", "--rootdir", src, image])
        let chunkMap = Self.chunks(try ToolRunner.check("btrfs", ["inspect-internal", "dump-tree", "-t", "chunk", image]).stdoutText)
        let fsDump = try ToolRunner.check("btrfs", ["inspect-internal", "dump-tree", "-t", "fs", image]).stdoutText
        var touchedLeaves: Set<UInt64> = []
        var extents: [String: Extent] = [:]
        for (name, algorithm) in [("zlib.txt", UInt8(1)), ("lzo.txt", 2), ("zstd.txt", 3)] {
            let e = try Self.extent(of: name, fsDump)
            extents[name] = e
            let data = contents[name] ?? []
            let input = directory.file("in-\(name)")
            try Data(data).write(to: URL(fileURLWithPath: input))
            var packed: [UInt8]
            switch algorithm {
            case 1:
                packed = [UInt8](try ToolRunner.check("python3", ["-c", "import sys,zlib; sys.stdout.buffer.write(zlib.compress(open(sys.argv[1],'rb').read()))", input]).stdout)
            case 2:
                packed = [0, 0, 0, 0]
                for start in stride(from: 0, to: data.count, by: 4096) {
                    let segment = try BtrfsCompressionTests.lzoBlock(Array(data[start..<min(data.count, start + 4096)]), in: directory, level: "-1")
                    if 4096 - packed.count % 4096 < 4 { packed += [UInt8](repeating: 0, count: 4096 - packed.count % 4096) }
                    var header: [UInt8] = [0, 0, 0, 0]
                    header.putLE32(UInt32(segment.count), at: 0)
                    packed += header + segment
                }
                packed.putLE32(UInt32(packed.count), at: 0)
            default:
                packed = [UInt8](try ToolRunner.check("zstd", ["-q", "-c", input]).stdout)
            }
            #expect(packed.count < e.diskBytes / 2)
            packed += [UInt8](repeating: 0, count: e.diskBytes - packed.count)
            try Self.write(packed, at: try Self.physical(e.diskBytenr, chunkMap), in: image)
            let leafAt = try Self.physical(e.leaf, chunkMap)
            try Self.write([algorithm], at: leafAt + 101 + UInt64(e.itemOffset) + 16, in: image)
            touchedLeaves.insert(leafAt)
        }
        func reseal() throws {
            let device = try FileBlockDevice(path: image)
            for leafAt in touchedLeaves {
                var block = try device.read(at: leafAt, count: 4096)
                block.putLE32(CRC32C.checksum(block[32...]), at: 0)
                try Self.write(Array(block[0..<4]), at: leafAt, in: image)
            }
        }
        try reseal()
        try ToolRunner.check("btrfs", ["check", "--readonly", image])
        var fs = try BtrfsReader(device: try FileBlockDevice(path: image))
        for (name, content) in contents {
            #expect(try fs.readFile("/\(name)") == content, "\(name)")
            // Ranged reads inside the compressed extent.
            let inode = try fs.resolve("/\(name)").inode
            #expect(try fs.read(inode: inode, offset: 12345, count: 7000) == Array(content[12345..<19345]))
        }

        // Slice: each compressed extent now starts 4096 bytes in and stops 8192 early; the
        // rest of the file reads as the implicit hole NO_HOLES leaves.
        for (name, e) in extents {
            let leafAt = try Self.physical(e.leaf, chunkMap)
            var fields = [UInt8](repeating: 0, count: 16)
            fields.putLE64(4096, at: 0)
            fields.putLE64(UInt64(e.diskBytes - 8192), at: 8)
            try Self.write(fields, at: leafAt + 101 + UInt64(e.itemOffset) + 37, in: image)
            _ = name
        }
        try reseal()
        fs = try BtrfsReader(device: try FileBlockDevice(path: image))
        for name in extents.keys {
            let content = contents[name] ?? []
            let diskBytes = extents[name]?.diskBytes ?? 0
            var want = [UInt8](repeating: 0, count: content.count)
            let kept = min(diskBytes - 8192, content.count - 4096)
            want.replaceSubrange(0..<kept, with: content[4096..<(4096 + kept)])
            #expect(try fs.readFile("/\(name)") == want, "\(name) sliced")
        }
    }
}
