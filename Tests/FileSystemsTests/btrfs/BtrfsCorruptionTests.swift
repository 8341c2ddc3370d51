import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

/// Seeded corruption of real mkfs.btrfs images: bytes flipped in the superblock and in
/// chunk, root and fs tree blocks (leaves and nodes), found by scanning for blocks that
/// carry the filesystem's fsid. Every such structure is crc32c-protected, so the outcome
/// must be exactly the source tree or a WispError: never different data, a crash or a hang.
@Suite("Btrfs corruption", .serialized)
struct BtrfsCorruptionTests {
    /// (physical offset, length, kind) of the superblock and every tree block owned by the
    /// chunk (3), root (1) or fs (5) tree, independent of the reader.
    static func metadataRanges(_ device: any BlockDevice, nodeSize: Int) throws -> [(offset: UInt64, length: Int, kind: String)] {
        let superblock = try device.read(at: 65536, count: 4096)
        let fsid = Array(superblock[32..<48])
        var ranges: [(UInt64, Int, String)] = [(65536, 4096, "superblock")]
        var offset: UInt64 = 0
        let owners: [UInt64: String] = [1: "root tree", 3: "chunk tree", 5: "fs tree"]
        while offset + UInt64(nodeSize) <= device.size {
            let chunk = Int(min(UInt64(4 << 20), device.size - offset))
            let bytes = try device.read(at: offset, count: chunk)
            var i = 0
            while i + nodeSize <= bytes.count {
                if Array(bytes[(i + 32)..<(i + 48)]) == fsid, offset + UInt64(i) != 65536 {
                    let owner = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i + 88, as: UInt64.self) }
                    if let name = owners[owner] {
                        ranges.append((offset + UInt64(i), nodeSize, bytes[i + 100] == 0 ? "\(name) leaf" : "\(name) node"))
                    }
                }
                i += 4096
            }
            offset += UInt64(chunk)
        }
        return ranges
    }

    typealias Outcome = ReaderTreeJudge.CorruptionOutcome

    @Test("200 seeded corruptions give the source data or a WispError")
    func seeded() throws {
        let fixture = try BtrfsFixture(options: ["-n", "4096", "-m", "single"], compact: true,
                                       directories: BtrfsFixture.compactDirectories)
        let base = try FileBlockDevice(path: fixture.image)
        try BtrfsReaderTests.compare(fixture, try BtrfsReader(device: base))
        let expected = try ReaderTreeJudge.walk(try BtrfsReader(device: base))
        let ranges = try Self.metadataRanges(base, nodeSize: 4096)
        let kinds = Set(ranges.map(\.kind))
        for wanted in ["superblock", "chunk tree leaf", "root tree leaf", "fs tree leaf", "fs tree node"] {
            #expect(kinds.contains(wanted), "no \(wanted) found to corrupt: \(kinds.sorted())")
        }
        let expectedXattrs = fixture.expectedXattrs
        let seeds = 240
        let outcomes = LockedValue<[Int: Outcome]>([:])
        let started = Date()
        DispatchQueue.concurrentPerform(iterations: seeds) { seed in
            var random = SplitMix64(state: UInt64(seed) &* 7919 &+ 23)
            // Spread seeds over kinds so the few chunk and root tree blocks get their share.
            let kindList = kinds.sorted()
            let kind = kindList[seed % kindList.count]
            let candidates = ranges.filter { $0.kind == kind }
            let range = candidates[Int(random.next() % UInt64(candidates.count))]
            var patches: [UInt64: UInt8] = [:]
            let original = (try? base.read(at: range.offset, count: range.length)) ?? []
            for _ in 0..<(1 + Int(random.next() % 3)) {
                // Half the flips hit the header and item table, where pointers and sizes live.
                let limit = random.next() % 2 == 0 ? min(range.length, 400) : range.length
                let at = Int(random.next() % UInt64(limit))
                patches[range.offset + UInt64(at)] = (patches[range.offset + UInt64(at)] ?? original[at]) ^ UInt8(1 + random.next() % 255)
            }
            let outcome = ReaderTreeJudge.outcome(expected: expected, xattrs: expectedXattrs) {
                try BtrfsReader(device: PatchedBlockDevice(base: base, patches: patches))
            }
            outcomes.withLock { $0[seed] = outcome }
        }
        let elapsed = Date().timeIntervalSince(started)
        let all = outcomes.withLock { $0 }
        #expect(all.count == seeds)
        var errors = 0, same = 0
        for (seed, outcome) in all.sorted(by: { $0.key < $1.key }) {
            switch outcome {
            case .same: same += 1
            case .wispError: errors += 1
            case .different: Issue.record("seed \(seed): corrupted metadata produced different data without an error")
            case .otherError(let e): Issue.record("seed \(seed): non-Wisp error \(e)")
            }
        }
        #expect(errors > seeds / 3, "only \(errors) of \(seeds) corruptions were detected")
        print("Btrfs corruption: \(seeds) seeds over \(kinds.sorted()), \(errors) errors, \(same) unchanged, \(String(format: "%.2f", elapsed)) s")
    }

    @Test("dup metadata: a damaged first copy of every tree block is read from the second")
    func dupFallback() throws {
        let fixture = try BtrfsFixture(options: ["-n", "4096", "-m", "dup"], compact: true,
                                       directories: BtrfsFixture.compactDirectories)
        let base = try FileBlockDevice(path: fixture.image)
        let expected = try ReaderTreeJudge.walk(try BtrfsReader(device: base))
        // Group copies by the logical address each block records; damage the lower copy.
        var copies: [UInt64: [UInt64]] = [:]
        for range in try Self.metadataRanges(base, nodeSize: 4096) where range.kind != "superblock" {
            let logical = try ByteReader(try base.read(at: range.offset + 48, count: 8), source: "test", structure: "header").u64le(0)
            copies[logical, default: []].append(range.offset)
        }
        var patches: [UInt64: UInt8] = [:]
        var damaged = 0
        for (_, offsets) in copies where offsets.count == 2 {
            let first = offsets.min() ?? 0
            patches[first + 200] = (try base.read(at: first + 200, count: 1)[0]) ^ 0x5A
            damaged += 1
        }
        #expect(damaged >= 3)
        let fs = try BtrfsReader(device: PatchedBlockDevice(base: base, patches: patches))
        #expect(try ReaderTreeJudge.walk(fs) == expected)
        // The same damage on both copies is an error, so the damaged blocks are in use.
        var both = patches
        for (_, offsets) in copies where offsets.count == 2 {
            for offset in offsets { both[offset + 200] = (try base.read(at: offset + 200, count: 1)[0]) ^ 0x5A }
        }
        #expect(throws: WispError.self) { try ReaderTreeJudge.walk(try BtrfsReader(device: PatchedBlockDevice(base: base, patches: both))) }
    }
}
