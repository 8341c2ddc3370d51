import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

/// Seeded corruption of real mkfs.xfs images: bytes flipped in the superblock, AG headers,
/// inodes, directory, attribute, symlink and bmap btree blocks. On v5 every such structure
/// is CRC-protected, so the outcome must be exactly the source tree or a WispError; on v4
/// (no CRCs) it must at least be data or a WispError, never a crash or a hang.
@Suite("XFS corruption", .serialized)
struct XFSCorruptionTests {
    /// Byte ranges of metadata found by magic number, independent of the reader.
    static func metadataRanges(_ device: any BlockDevice, blockSize: Int, inodeSize: Int) throws -> [(offset: UInt64, length: Int, kind: String)] {
        var ranges: [(UInt64, Int, String)] = []
        let blockMagics: [UInt32: String] = [
            0x5846_5342: "superblock", 0x5841_4746: "AGF", 0x5841_4749: "AGI",
            0x5844_4233: "dir block", 0x5844_4433: "dir data", 0x5844_3242: "dir block v4", 0x5844_3244: "dir data v4",
            0x424D_4133: "bmbt", 0x424D_4150: "bmbt v4", 0x5841_524D: "remote attr", 0x5853_4C4D: "remote symlink",
        ]
        let daMagics: [UInt16: String] = [0x3BEE: "attr leaf", 0xFBEE: "attr leaf v4", 0x3EBE: "da node", 0xFEBE: "da node v4"]
        for extent in try device.allocationMap() where extent.kind == .data {
            var offset = extent.offset - extent.offset % 512
            let end = extent.end
            while offset < end {
                let chunk = Int(min(UInt64(1 << 20), end - offset))
                let bytes = try device.read(at: offset, count: chunk - chunk % 512)
                var i = 0
                while i + 512 <= bytes.count {
                    let at = offset + UInt64(i)
                    let m32 = UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
                    let m16 = UInt16(bytes[i + 8]) << 8 | UInt16(bytes[i + 9])
                    if at < 512 * 3 || at % UInt64(blockSize) == 0 {
                        if let kind = blockMagics[m32] {
                            let length = ["superblock", "AGF", "AGI"].contains(kind) ? 512 : blockSize
                            ranges.append((at, length, kind))
                        } else if let kind = daMagics[m16] {
                            ranges.append((at, blockSize, kind))
                        }
                    }
                    if bytes[i] == 0x49, bytes[i + 1] == 0x4E, [1, 2, 3].contains(bytes[i + 4]), at % UInt64(inodeSize) == 0 {
                        ranges.append((at, inodeSize, "inode"))
                    }
                    i += 512
                }
                // Inodes smaller than a sector (v4 256-byte inodes) sit at odd halves too.
                if inodeSize < 512 {
                    var j = 256
                    while j + 256 <= bytes.count {
                        if bytes[j] == 0x49, bytes[j + 1] == 0x4E, [1, 2].contains(bytes[j + 4]) {
                            ranges.append((offset + UInt64(j), 256, "inode"))
                        }
                        j += 512
                    }
                }
                offset += UInt64(chunk)
            }
        }
        return ranges
    }

    typealias Outcome = ReaderTreeJudge.CorruptionOutcome

    func run(options: [String], blockSize: Int, inodeSize: Int, seeds: Int, mustMatch: Bool) throws {
        let fixture = try XFSFixture(options: options, blockSize: blockSize, directories: XFSFixture.smallDirectories,
                                     compact: true, imageSize: "64M")
        let base = try FileBlockDevice(path: fixture.image)
        // The uncorrupted image reads back exactly.
        let clean = try XFSReader(device: base)
        try XFSReaderTests.compare(fixture, clean)
        let walkStart = Date()
        let expected = try ReaderTreeJudge.walk(try XFSReader(device: base))
        print("XFS corruption: one clean walk takes \(String(format: "%.3f", Date().timeIntervalSince(walkStart))) s")
        #expect(try XFSReaderTests.format(fixture, "/fragmented") == "btree")
        let ranges = try Self.metadataRanges(base, blockSize: blockSize, inodeSize: inodeSize)
        let kinds = Set(ranges.map(\.kind))
        for wanted in ["superblock", "AGF", "AGI", "inode", "bmbt", "attr leaf", "da node"] {
            #expect(kinds.contains(where: { $0.hasPrefix(wanted) }), "no \(wanted) found to corrupt: \(kinds.sorted())")
        }
        #expect(kinds.contains(where: { $0.hasPrefix("dir data") }))
        let expectedXattrs = fixture.expectedXattrs
        let outcomes = LockedValue<[Int: Outcome]>([:])
        let started = Date()
        DispatchQueue.concurrentPerform(iterations: seeds) { seed in
            var random = SplitMix64(state: UInt64(seed) &* 7919 &+ 17)
            let range = ranges[Int(random.next() % UInt64(ranges.count))]
            var patches: [UInt64: UInt8] = [:]
            let flips = 1 + Int(random.next() % 3)
            let original = (try? base.read(at: range.offset, count: range.length)) ?? []
            for _ in 0..<flips {
                let at = Int(random.next() % UInt64(range.length))
                let mask = UInt8(1 + random.next() % 255)
                patches[range.offset + UInt64(at)] = (patches[range.offset + UInt64(at)] ?? original[at]) ^ mask
            }
            let outcome = ReaderTreeJudge.outcome(expected: expected, xattrs: expectedXattrs) {
                try XFSReader(device: PatchedBlockDevice(base: base, patches: patches))
            }
            outcomes.withLock { $0[seed] = outcome }
            _ = range.kind
        }
        let elapsed = Date().timeIntervalSince(started)
        let all = outcomes.withLock { $0 }
        #expect(all.count == seeds)
        var errors = 0, same = 0
        for (seed, outcome) in all.sorted(by: { $0.key < $1.key }) {
            switch outcome {
            case .same: same += 1
            case .wispError: errors += 1
            case .different:
                if mustMatch { Issue.record("seed \(seed): corrupted v5 metadata produced different data without an error") }
            case .otherError(let e): Issue.record("seed \(seed): non-Wisp error \(e)")
            }
        }
        // Most flips land in checked fields; some hit free inode slots or unread blocks.
        #expect(!mustMatch || errors > seeds / 2, "only \(errors) of \(seeds) corruptions were detected")
        print("XFS corruption \(options): \(seeds) seeds, \(errors) errors, \(same) unchanged, \(String(format: "%.2f", elapsed)) s")
    }

    @Test("v5: 200 seeded corruptions give the source data or a WispError")
    func v5Corruption() throws {
        try run(options: ["-b", "size=1024"], blockSize: 1024, inodeSize: 512, seeds: 200, mustMatch: true)
    }

    @Test("v4: 100 seeded corruptions never crash or hang")
    func v4Corruption() throws {
        try run(options: ["-m", "crc=0", "-b", "size=1024", "-i", "size=256"], blockSize: 1024, inodeSize: 256,
                seeds: 100, mustMatch: false)
    }
}
