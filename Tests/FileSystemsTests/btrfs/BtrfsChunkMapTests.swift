import Testing
import WispCore
@testable import FileSystems

/// mkfs.btrfs refuses striped profiles on one device, so the striping arithmetic of
/// raid0/raid10/raid1c3 is checked here against the kernel's formulas (btrfs_map_block)
/// worked by hand; single and dup are covered by the image tests.
@Suite("Btrfs chunk map")
struct BtrfsChunkMapTests {
    static func chunk(type: UInt64, stripes: [UInt64], subStripes: UInt16 = 1, length: UInt64 = 6 << 16) throws -> BtrfsChunk {
        var bytes = [UInt8](repeating: 0, count: 48 + 32 * stripes.count)
        bytes.putLE64(length, at: 0)
        bytes.putLE64(1 << 16, at: 16)
        bytes.putLE64(type | 1, at: 24)
        bytes.putLE16(UInt16(stripes.count), at: 44)
        bytes.putLE16(subStripes, at: 46)
        for (i, offset) in stripes.enumerated() {
            bytes.putLE64(1, at: 48 + 32 * i)
            bytes.putLE64(offset, at: 56 + 32 * i)
        }
        return try BtrfsChunk.parse(key: BtrfsKey(objectID: 256, type: 228, offset: 1 << 30),
                                    ByteReader(bytes, source: "test", structure: "chunk"), deviceID: 1, source: "test")
    }

    @Test("raid0 rotates 64 KiB stripes over the devices' stripes")
    func raid0() throws {
        let c = try Self.chunk(type: BtrfsChunk.raid0, stripes: [0x100000, 0x900000])
        #expect(c.map((1 << 30) + 5).copies == [0x100005])
        #expect(c.map((1 << 30) + 5).run == (1 << 16) - 5)
        #expect(c.map((1 << 30) + (1 << 16) + 7).copies == [0x900007])
        #expect(c.map((1 << 30) + (2 << 16) + 9).copies == [0x100000 + (1 << 16) + 9])
    }

    @Test("raid10 mirrors pairs and stripes across them; raid1c3 keeps three copies")
    func raid10AndMirrors() throws {
        let c = try Self.chunk(type: BtrfsChunk.raid10, stripes: [0x100000, 0x200000, 0x300000, 0x400000], subStripes: 2)
        #expect(c.map(1 << 30).copies == [0x100000, 0x200000])
        #expect(c.map((1 << 30) + (1 << 16)).copies == [0x300000, 0x400000])
        #expect(c.map((1 << 30) + (2 << 16) + 1).copies == [0x100000 + (1 << 16) + 1, 0x200000 + (1 << 16) + 1])
        let m = try Self.chunk(type: BtrfsChunk.raid1c3, stripes: [0x100000, 0x200000, 0x300000])
        #expect(m.map((1 << 30) + 10).copies == [0x10000A, 0x20000A, 0x30000A])
    }

    @Test("parity profiles and foreign devices are refused by name")
    func refused() throws {
        #expect(throws: WispError.self) { try Self.chunk(type: BtrfsChunk.raid5, stripes: [0, 1 << 20, 2 << 20]) }
        var bytes = [UInt8](repeating: 0, count: 80)
        bytes.putLE64(1 << 20, at: 0)
        bytes.putLE64(1 << 16, at: 16)
        bytes.putLE16(1, at: 44)
        bytes.putLE64(2, at: 48)
        do {
            _ = try BtrfsChunk.parse(key: BtrfsKey(objectID: 256, type: 228, offset: 0),
                                     ByteReader(bytes, source: "test", structure: "chunk"), deviceID: 1, source: "test")
            Issue.record("a chunk on device 2 was accepted")
        } catch let error as WispError {
            #expect(error.kind == .unsupported && error.message.contains("multi-device"))
        }
    }
}
