import Foundation
import Partitions
import Testing
import WispCore
import WispTestSupport
@testable import GuestInspect

/// Issue 16, the messages: when a corrupt block stops inspection, the error is that block's
/// (here a qcow2 L2 entry, as `wisp fs ls` reports it), not "no filesystem holds an OS root".
@Suite struct InspectCauseTests {
    /// Debian's layout built by mkfs.ext4/sgdisk, converted by qemu-img, then the L2 entry
    /// mapping the first block of the root filesystem's /etc made unaligned.
    static func diskWithCorruptEtc(_ layout: GuestLayout) throws -> (qcow2: String, entry: UInt64) {
        let raw = try CloudImageLayouts.debianDisk(layout)
        let table = try PartitionTable.read(from: try FileBlockDevice(path: raw))
        let root = try #require(table.partition(number: 1))
        let partition = layout.dir.file("root-partition.img")
        try ToolRunner.check("dd", ["if=\(raw)", "of=\(partition)", "bs=1M", "skip=\(root.startOffset >> 20)",
                                    "count=\(root.size >> 20)", "status=none"])
        let bmap = try ToolRunner.check("debugfs", ["-R", "bmap /etc 0", partition]).stdoutText
        let block = try #require(UInt64(bmap.trimmingCharacters(in: .whitespacesAndNewlines)))
        let stats = try ToolRunner.check("dumpe2fs", ["-h", partition]).stdoutText
        let sizeLine = try #require(stats.split(separator: "\n").first { $0.hasPrefix("Block size:") })
        let blockSize = try #require(UInt64(sizeLine.dropFirst("Block size:".count).trimmingCharacters(in: .whitespaces)))
        let qcow2 = layout.dir.file("debian.qcow2")
        try ToolRunner.check("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", raw, qcow2])
        let file = try FileBlockDevice(path: qcow2, writable: true)
        let header = try file.read(at: 0, count: 48)
        let clusterBits = UInt64(ByteReaderBE.u32(header, 20))
        let l1Offset = ByteReaderBE.u64(header, 40)
        let virtual = root.startOffset + block * blockSize
        let cluster = virtual >> clusterBits
        let perTable = UInt64(1) << (clusterBits - 3)
        let l1Entry = ByteReaderBE.u64(try file.read(at: l1Offset + (cluster / perTable) * 8, count: 8), 0)
        let l2Location = (l1Entry & 0x00FF_FFFF_FFFF_FE00) + (cluster % perTable) * 8
        let entry = ByteReaderBE.u64(try file.read(at: l2Location, count: 8), 0)
        #expect(entry & 0x00FF_FFFF_FFFF_FE00 != 0, "the /etc block must be allocated")
        var patched = [UInt8](repeating: 0, count: 8)
        patched.putBE64(entry + 512, at: 0)
        try file.write(patched, at: l2Location)
        return (qcow2, l2Location)
    }

    @Test func inspectionNamesTheCorruptL2EntryNotAMissingRoot() throws {
        let layout = try GuestLayout("cause")
        let (qcow2, entry) = try Self.diskWithCorruptEtc(layout)
        #expect {
            _ = try GuestInspector(guestDisk: try GuestDisk(path: qcow2)).inspect()
        } throws: { error in
            let text = "\(error)"
            return (error as? WispError)?.kind == .corrupt && text.contains("L2 entry for cluster")
                && text.contains("at offset \(entry)") && text.contains("unaligned")
                && !text.contains("no filesystem holds an OS root")
        }
        // `wisp fs` without --partition goes the same way.
        #expect {
            _ = try GuestDisk(path: qcow2).guestTree()
        } throws: { error in
            (error as? WispError)?.kind == .corrupt && "\(error)".contains("L2 entry for cluster")
        }
    }
}

/// Big-endian fields of the qcow2 header, for the test's own patching.
enum ByteReaderBE {
    static func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 << 8 | UInt32(bytes[at + $1]) }
    }
    static func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 << 8 | UInt64(bytes[at + $1]) }
    }
}
