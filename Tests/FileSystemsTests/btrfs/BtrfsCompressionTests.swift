import Foundation
import Testing
import WispCompression
import WispCore
import WispTestSupport
@testable import FileSystems

/// mkfs.btrfs 6.2 has no --compress and nothing in btrfs-progs 6.2 writes compressed
/// extents without mounting, so the extent decompressors are judged on real frames from
/// the real tools: zlib streams from Python's zlib, zstd frames from the zstd CLI, and
/// LZO1X data from lzop (its file framing stripped), re-framed the way btrfs frames LZO
/// (per-sector segments behind length headers).
@Suite("Btrfs compression", .serialized)
struct BtrfsCompressionTests {
    static func sample(_ count: Int, seed: UInt64) -> [UInt8] {
        var random = SplitMix64(state: seed)
        var out: [UInt8] = []
        let words = ["btrfs", "extent", "sector", "zstd", "lzo", "zlib", "wisp", "\n", " ", "0123456789"]
        while out.count < count {
            out += Array(words[Int(random.next() % UInt64(words.count))].utf8)
            if random.next() % 17 == 0 { out += random.bytes(3) }
        }
        return Array(out.prefix(count))
    }

    /// The LZO1X block of an lzop file holding one block.
    static func lzoBlock(_ data: [UInt8], in directory: TemporaryDirectory, level: String) throws -> [UInt8] {
        let input = directory.file("chunk-\(data.count)-\(level)")
        try Data(data).write(to: URL(fileURLWithPath: input))
        let file = [UInt8](try ToolRunner.check("lzop", ["-c", level, input]).stdout)
        let r = ByteReader(file, source: "lzop", structure: "lzop file")
        guard try r.array(0, 9) == [0x89, 0x4C, 0x5A, 0x4F, 0x00, 0x0D, 0x0A, 0x1A, 0x0A] else { throw r.error(at: 0, "not lzop") }
        let version = try r.u16be(9)
        var at = 13
        if version >= 0x0940 { at += 2 }
        at += 1                              // method
        if version >= 0x0940 { at += 1 }     // level
        let flags = try r.u32be(at); at += 4
        if flags & 0x800 != 0 { at += 4 }    // filter
        at += 8                              // mode, mtime low
        if version >= 0x0940 { at += 4 }     // mtime high
        at += 1 + Int(try r.u8(at))          // name
        at += 4                              // header checksum
        if flags & 0x40 != 0 { at += 8 + Int(try r.u32be(at)) }
        let plainLength = Int(try r.u32be(at)), packedLength = Int(try r.u32be(at + 4))
        at += 8
        if flags & 0x1 != 0 { at += 4 }
        if flags & 0x100 != 0 { at += 4 }
        if packedLength < plainLength {
            if flags & 0x2 != 0 { at += 4 }
            if flags & 0x200 != 0 { at += 4 }
        }
        guard plainLength == data.count, packedLength < plainLength else {
            throw WispError(.failed, "lzop stored the block uncompressed (\(packedLength) of \(plainLength))")
        }
        return try r.array(at, packedLength)
    }

    @Test("LZO1X: lzop's compressed blocks decompress to the original, at every level")
    func lzoFrames() throws {
        let directory = try TemporaryDirectory("wisp-lzo")
        for (size, level) in [(4096, "-1"), (4096, "-3"), (4096, "-9"), (100_000, "-3"), (200, "-7")] {
            let data = Self.sample(size, seed: UInt64(size))
            let block = try Self.lzoBlock(data, in: directory, level: level)
            #expect(try LZO.decompress(block, limit: size, context: "test") == data)
            #expect(throws: WispError.self) { try LZO.decompress(block, limit: size - 1, context: "test") }
        }
    }

    @Test("btrfs LZO framing: per-sector segments, headers never straddling a sector")
    func lzoSectorFraming() throws {
        let directory = try TemporaryDirectory("wisp-lzo")
        let sector = 4096
        for sectors in [1, 5, 32] {
            let data = Self.sample(sector * sectors - 1000, seed: UInt64(sectors) &* 31)
            var framed: [UInt8] = [0, 0, 0, 0]
            var straddles = 0
            for start in stride(from: 0, to: data.count, by: sector) {
                let segment = try Self.lzoBlock(Array(data[start..<min(data.count, start + sector)]), in: directory, level: "-1")
                let room = sector - framed.count % sector
                if room < 4 { framed += [UInt8](repeating: 0, count: room); straddles += 1 }
                var header: [UInt8] = [0, 0, 0, 0]
                header.putLE32(UInt32(segment.count), at: 0)
                framed += header + segment
            }
            framed.putLE32(UInt32(framed.count), at: 0)
            // On disk the extent is padded to whole sectors.
            let padded = framed + [UInt8](repeating: 0, count: (sector - framed.count % sector) % sector)
            let plain = try BtrfsReader.decompress(padded, algorithm: 2, size: data.count, sectorSize: sector,
                                                   source: "test", what: "extent")
            #expect(plain == data)
            _ = straddles
        }
    }

    @Test("zlib and zstd extents from the real tools, padded to sectors, with offset slicing")
    func zlibAndZstd() throws {
        let directory = try TemporaryDirectory("wisp-btrfs-z")
        let data = Self.sample(128 << 10, seed: 7)
        let input = directory.file("data")
        try Data(data).write(to: URL(fileURLWithPath: input))
        let zlib = [UInt8](try ToolRunner.check("python3", ["-c", "import sys,zlib; sys.stdout.buffer.write(zlib.compress(open(sys.argv[1],'rb').read(), 3))", input]).stdout)
        let zstd = [UInt8](try ToolRunner.check("zstd", ["-q", "-c", "-3", input]).stdout)
        for (algorithm, stream) in [(UInt8(1), zlib), (3, zstd)] {
            let padded = stream + [UInt8](repeating: 0, count: (4096 - stream.count % 4096) % 4096)
            #expect(try BtrfsReader.decompress(padded, algorithm: algorithm, size: data.count, sectorSize: 4096,
                                               source: "test", what: "extent") == data)
            // A short result (ram_bytes larger than the stream) is zero-filled like the kernel does.
            let longer = try BtrfsReader.decompress(stream, algorithm: algorithm, size: data.count + 100, sectorSize: 4096,
                                                    source: "test", what: "extent")
            #expect(Array(longer.prefix(data.count)) == data && longer.suffix(100).allSatisfy { $0 == 0 })
        }
        #expect(throws: WispError.self) {
            try BtrfsReader.decompress(zstd, algorithm: 4, size: 10, sectorSize: 4096, source: "test", what: "extent")
        }
    }

    @Test("hostile LZO input: 3000 mutated streams end in data or a WispError")
    func hostileLZO() throws {
        let directory = try TemporaryDirectory("wisp-lzo")
        let data = Self.sample(4096, seed: 99)
        let block = try Self.lzoBlock(data, in: directory, level: "-3")
        var random = SplitMix64(state: 5)
        var errors = 0
        for _ in 0..<3000 {
            var mutated = block
            for _ in 0..<(1 + Int(random.next() % 4)) {
                mutated[Int(random.next() % UInt64(mutated.count))] ^= UInt8(1 + random.next() % 255)
            }
            if random.next() % 4 == 0 { mutated = Array(mutated.prefix(Int(random.next() % UInt64(mutated.count)))) }
            do {
                let out = try LZO.decompress(mutated, limit: 4096, context: "test")
                #expect(out.count <= 4096)
            } catch is WispError {
                errors += 1
            }
        }
        #expect(errors > 1000)
        for garbage in [[UInt8](), [0], [0x11, 0, 0], [0xFF, 0xFF, 0xFF, 0xFF], [0, 0, 0, 0, 0, 0, 0]] {
            _ = try? LZO.decompress(garbage, limit: 100, context: "test")
        }
        #expect(try LZO.decompress([0x11, 0, 0], limit: 100, context: "test") == [])
    }
}
