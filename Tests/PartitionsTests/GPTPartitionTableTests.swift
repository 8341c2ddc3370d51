import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import Partitions

@Suite struct GPTPartitionTableTests {
    /// sgdisk makes the table; sfdisk --json and sgdisk -i judge what we read.
    func makeSgdiskDisk(_ dir: TemporaryDirectory) throws -> String {
        let path = dir.file("gpt.img")
        try PartitionFixtures.blankDisk(path, size: 64 << 20)
        try ToolRunner.check("sgdisk", [
            "-n", "1:2048:+8M", "-t", "1:ef00", "-c", "1:EFI System Partition",
            "-n", "14:0:+1M", "-t", "14:ef02", "-c", "14:bios",
            "-n", "2:0:+20M", "-t", "2:8300", "-c", "2:root ü日本",
            "-A", "2:set:2", "-A", "2:set:60", path,
        ])
        return path
    }

    @Test func readsWhatSgdiskWrote() throws {
        let dir = try TemporaryDirectory("gpt")
        let path = try makeSgdiskDisk(dir)
        let table = try PartitionTable.read(from: FileBlockDevice(path: path))
        let judge = try PartitionFixtures.sfdiskJSON(path)
        #expect(table.scheme == .gpt)
        #expect(table.sectorSize == 512)
        #expect(table.warnings == [])
        #expect(table.diskGUID == (judge["id"] as? String)?.lowercased())
        let expected = try #require(judge["partitions"] as? [[String: Any]])
        #expect(table.partitions.count == expected.count)
        for entry in expected {
            let node = try #require(entry["node"] as? String)
            let number = try #require(Int(node.dropFirst(path.count)))
            let partition = try #require(table.partition(number: number))
            #expect(partition.startOffset == UInt64(try #require(entry["start"] as? Int)) * 512)
            #expect(partition.size == UInt64(try #require(entry["size"] as? Int)) * 512)
            #expect(partition.typeGUID == (entry["type"] as? String)?.lowercased())
            #expect(partition.uniqueGUID == (entry["uuid"] as? String)?.lowercased())
            #expect(partition.name == entry["name"] as? String)
            let info = try ToolRunner.check("sgdisk", ["-i", "\(number)", path]).stdoutText
            let flags = try #require(info.split(separator: "\n").first { $0.hasPrefix("Attribute flags: ") })
            #expect(partition.attributes == UInt64(flags.dropFirst("Attribute flags: ".count), radix: 16))
        }
        #expect(table.partition(number: 2)?.name == "root ü日本")
        #expect(table.partition(number: 2)?.attributes == (1 << 2) | (1 << 60))
        #expect(table.partition(number: 1)?.typeName == "EFI System")
        #expect(table.partition(number: 14)?.typeName == "BIOS boot")
        // Each partition reads as its own device.
        let disk = try FileBlockDevice(path: path)
        let p2 = try #require(table.partition(number: 2))
        let device = try p2.device(on: disk)
        #expect(device.size == p2.size)
    }

    @Test func readsFourKibibyteSectors() throws {
        let dir = try TemporaryDirectory("gpt4k")
        let path = dir.file("gpt4k.img")
        try PartitionFixtures.blankDisk(path, size: 64 << 20)
        // fdisk can address a file as a 4096-byte-sector disk; sgdisk and sfdisk cannot.
        let script = "g\nn\n1\n256\n+4M\nt\n1\nn\n2\n\n+8M\nx\nn\n1\nesp\nn\n2\nroot\nr\nw\n"
        _ = try ToolRunner.run("fdisk", ["-b", "4096", path], input: Data(script.utf8))
        let listing = try ToolRunner.check("fdisk", ["-b", "4096", "-l", "-o", "Device,Start,Sectors,Name,UUID,Type-UUID", path]).stdoutText
        let rows = listing.split(separator: "\n").filter { $0.hasPrefix(path) }.map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        #expect(rows.count == 2)
        let table = try PartitionTable.read(from: FileBlockDevice(path: path))
        #expect(table.scheme == .gpt)
        #expect(table.sectorSize == 4096)
        #expect(table.warnings == [])
        #expect(table.partitions.count == rows.count)
        for row in rows {
            let number = try #require(Int(row[0].dropFirst(path.count)))
            let partition = try #require(table.partition(number: number))
            #expect(partition.startOffset == UInt64(try #require(UInt64(row[1]))) * 4096)
            #expect(partition.size == UInt64(try #require(UInt64(row[2]))) * 4096)
            #expect(partition.name == String(row[3]))
            #expect(partition.uniqueGUID == row[4].lowercased())
            #expect(partition.typeGUID == row[5].lowercased())
        }
        #expect(table.partition(number: 1)?.name == "esp")
    }

    @Test func damagedPrimaryHeaderFallsBackToBackup() throws {
        let dir = try TemporaryDirectory("gptbad")
        let path = try makeSgdiskDisk(dir)
        let good = try PartitionTable.read(from: FileBlockDevice(path: path))
        // One flipped byte in the primary header's first-usable-LBA field breaks its CRC.
        let original = try PartitionFixtures.bytes(path, at: 512 + 40, count: 1)
        try PartitionFixtures.patch(path, at: 512 + 40, [original[0] ^ 0xFF])
        let fallback = try PartitionTable.read(from: FileBlockDevice(path: path))
        #expect(fallback.partitions == good.partitions)
        #expect(fallback.diskGUID == good.diskGUID)
        #expect(fallback.warnings.contains { $0.contains("primary GPT is damaged") && $0.contains("CRC32") })
        // sgdisk agrees the primary is damaged.
        let verify = try ToolRunner.run("sgdisk", ["-v", path]).stdoutText
        #expect(verify.contains("CRC") || verify.contains("corrupt"))
    }

    @Test func damagedPrimaryEntriesFallBackToBackup() throws {
        let dir = try TemporaryDirectory("gptbad")
        let path = try makeSgdiskDisk(dir)
        let good = try PartitionTable.read(from: FileBlockDevice(path: path))
        // Rename partition 1 in the primary array only: the array CRC no longer matches.
        try PartitionFixtures.patch(path, at: 1024 + 56, Array("X".utf8) + [0])
        let fallback = try PartitionTable.read(from: FileBlockDevice(path: path))
        #expect(fallback.partitions == good.partitions)
        #expect(fallback.warnings.contains { $0.contains("primary GPT entry array") })
    }

    @Test func bothHeadersDamagedIsAnError() throws {
        let dir = try TemporaryDirectory("gptbad")
        let path = try makeSgdiskDisk(dir)
        try PartitionFixtures.patch(path, at: 512 + 40, [0xFF])
        try PartitionFixtures.patch(path, at: (64 << 20) - 512 + 40, [0xFF])
        #expect {
            _ = try PartitionTable.read(from: FileBlockDevice(path: path))
        } throws: { error in
            (error as? WispError)?.kind == .corrupt && "\(error)".contains("both headers are unusable")
        }
    }

    @Test func absurdEntryCountIsRefusedWithoutAllocating() throws {
        let dir = try TemporaryDirectory("gptbad")
        let path = try makeSgdiskDisk(dir)
        // A correctly checksummed primary header that claims 4 billion entries.
        try PartitionFixtures.patch(path, at: 512 + 80, [0xFF, 0xFF, 0xFF, 0xFF])
        try PartitionFixtures.refreshHeaderCRC(path, headerAt: 512)
        let table = try PartitionTable.read(from: FileBlockDevice(path: path))
        #expect(table.warnings.contains { $0.contains("entries of 128 bytes exceed") })
        #expect(table.partitions.count == 3)
        // Same for an absurd entry size, on both headers: an error, not an allocation.
        try PartitionFixtures.patch(path, at: (64 << 20) - 512 + 84, [0x00, 0x00, 0x00, 0x40])
        try PartitionFixtures.refreshHeaderCRC(path, headerAt: (64 << 20) - 512)
        #expect(throws: WispError.self) { _ = try PartitionTable.read(from: FileBlockDevice(path: path)) }
    }

    /// Issue 16, failure 1: a CRC-valid header whose last usable sector is 2^64-1 trapped on
    /// `last + 1`. Each LBA field is now checked against the disk and the others.
    @Test func headerLBAsAreCheckedAgainstTheDiskAndEachOther() throws {
        let dir = try TemporaryDirectory("gptlba")
        let path = try makeSgdiskDisk(dir)
        let good = try PartitionTable.read(from: FileBlockDevice(path: path))
        let pristine = try PartitionFixtures.bytes(path, at: 0, count: 34 * 512)
        let tail = try PartitionFixtures.bytes(path, at: (64 << 20) - 33 * 512, count: 33 * 512)
        let backupHeader: UInt64 = (64 << 20) - 512
        var maximum = [UInt8](repeating: 0, count: 8)
        maximum.putLE64(UInt64.max, at: 0)
        try PartitionFixtures.patch(path, at: 512 + 48, maximum)
        try PartitionFixtures.refreshHeaderCRC(path, headerAt: 512)
        let fallback = try PartitionTable.read(from: FileBlockDevice(path: path))
        #expect(fallback.partitions == good.partitions)
        #expect(fallback.warnings.contains {
            $0.contains("primary GPT header (offset 560) says the usable area ends at sector 18446744073709551615, past the end of the disk")
                && $0.contains("using the backup")
        })
        // Both headers so: the backup's own sector falls inside its usable area, so it is
        // refused; the primary is kept as a truncated disk's would be, partitions checked
        // against the disk.
        try PartitionFixtures.patch(path, at: backupHeader + 48, maximum)
        try PartitionFixtures.refreshHeaderCRC(path, headerAt: backupHeader)
        let both = try PartitionTable.read(from: FileBlockDevice(path: path))
        #expect(both.partitions == good.partitions)
        #expect(both.warnings.contains { $0.contains("the image may be truncated") })
        #expect(both.warnings.contains { $0.contains("backup GPT header at offset \(backupHeader + 24): the header's own sector \(backupHeader / 512) lies inside the usable area") })
        // And with first usable > last usable in both: an error naming the field, not a trap.
        var first = [UInt8](repeating: 0, count: 8), last = [UInt8](repeating: 0, count: 8)
        first.putLE64(UInt64.max, at: 0)
        last.putLE64(100, at: 0)
        for header in [UInt64(512), backupHeader] {
            try PartitionFixtures.patch(path, at: header + 40, first + last)
            try PartitionFixtures.refreshHeaderCRC(path, headerAt: header)
        }
        #expect {
            _ = try PartitionTable.read(from: FileBlockDevice(path: path))
        } throws: { error in
            (error as? WispError)?.kind == .corrupt && "\(error)".contains("both headers are unusable")
                && "\(error)".contains("first usable sector 18446744073709551615 is after last usable sector 100")
        }
        // Every other field that names a sector, at a hostile value, in the primary: the
        // backup is used and the warning names the check that refused the primary.
        let lastLBA = UInt64((64 << 20) / 512 - 1)
        let hostile: [(field: UInt64, value: UInt64, says: String)] = [
            (48, lastLBA + 1, "says the usable area ends at sector \(lastLBA + 1), past the end of the disk"),
            (40, UInt64.max, "first usable sector 18446744073709551615 is after last usable sector"),
            (40, 0, "the header's own sector 1 lies inside the usable area"),
            (72, UInt64.max, "reaches past the end of the disk"),
            (72, UInt64.max - 1, "reaches past the end of the disk"),
            (72, lastLBA - 5, "reaches past the end of the disk"),
            (72, 40, "overlaps the usable area"),
            (72, 0, "overlaps the header's own sector 1"),
        ]
        for (field, value, says) in hostile {
            try PartitionFixtures.patch(path, at: 0, pristine)
            try PartitionFixtures.patch(path, at: (64 << 20) - 33 * 512, tail)
            var bytes = [UInt8](repeating: 0, count: 8)
            bytes.putLE64(value, at: 0)
            try PartitionFixtures.patch(path, at: 512 + field, bytes)
            try PartitionFixtures.refreshHeaderCRC(path, headerAt: 512)
            let table = try PartitionTable.read(from: FileBlockDevice(path: path))
            #expect(table.partitions == good.partitions)
            #expect(table.warnings.contains { $0.contains(says) && ($0.contains("primary GPT is damaged") || $0.contains("using the backup")) },
                    "\(says): \(table.warnings)")
        }
        try PartitionFixtures.patch(path, at: 0, pristine)
        try PartitionFixtures.patch(path, at: (64 << 20) - 33 * 512, tail)
        // sgdisk, the judge, refuses the same header.
        try PartitionFixtures.patch(path, at: 512 + 48, maximum)
        try PartitionFixtures.refreshHeaderCRC(path, headerAt: 512)
        let verify = try ToolRunner.run("sgdisk", ["-v", path]).stdoutText
        #expect(!verify.contains("No problems found"))
    }

    @Test func truncatedImageKeepsPrimaryAndCutsPartitions() throws {
        let dir = try TemporaryDirectory("gpttrunc")
        let path = try makeSgdiskDisk(dir)
        // Cut the disk in the middle of partition 2: no backup, partition 2 truncated.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: 20 << 20)
        try handle.close()
        let table = try PartitionTable.read(from: FileBlockDevice(path: path))
        #expect(table.warnings.contains { $0.contains("backup GPT") })
        #expect(table.warnings.contains { $0.contains("partition 2 ends past the end of the disk") })
        #expect(table.partition(number: 2)?.endOffset == 20 << 20)
        #expect(table.partition(number: 1) != nil)
    }

    @Test func entriesPastTheDiskOrOverlappingAreReported() throws {
        let dir = try TemporaryDirectory("gptodd")
        let path = dir.file("odd.img")
        try PartitionFixtures.blankDisk(path, size: 16 << 20)
        try ToolRunner.check("sgdisk", ["-n", "1:2048:+4M", "-n", "2:0:+4M", path])
        // Move partition 2's start back into partition 1 and point partition 3 past the
        // end, in both arrays, with valid CRCs: the table stays readable, with warnings.
        let device = try FileBlockDevice(path: path)
        let original = try PartitionTable.read(from: device)
        #expect(original.warnings == [])
        for arrayLBA in [UInt64(2), UInt64((16 << 20) / 512 - 33)] {
            let entries = arrayLBA * 512
            var lba = [UInt8](repeating: 0, count: 8)
            lba.putLE64(4096, at: 0)
            try PartitionFixtures.patch(path, at: entries + 128 + 32, lba)
            var third = try PartitionFixtures.bytes(path, at: entries + 128, count: 128)
            third.putLE64(1 << 40, at: 32)
            third.putLE64(1 << 41, at: 40)
            third[16] ^= 0x55
            try PartitionFixtures.patch(path, at: entries + 256, third)
            let array = try PartitionFixtures.bytes(path, at: entries, count: 128 * 128)
            var crc = [UInt8](repeating: 0, count: 4)
            crc.putLE32(CRC32.checksum(array), at: 0)
            let header: UInt64 = arrayLBA == 2 ? 512 : (16 << 20) - 512
            try PartitionFixtures.patch(path, at: header + 88, crc)
            try PartitionFixtures.refreshHeaderCRC(path, headerAt: header)
        }
        let table = try PartitionTable.read(from: FileBlockDevice(path: path))
        #expect(table.partitions.map(\.number) == [1, 2])
        #expect(table.warnings.contains { $0.contains("partitions 1 and 2 overlap") })
        #expect(table.warnings.contains { $0.contains("partition 3") && $0.contains("past the end of the disk") })
    }

    @Test func seededCorruptionNeverCrashes() throws {
        let dir = try TemporaryDirectory("gptfuzz")
        let path = try makeSgdiskDisk(dir)
        let pristine = try PartitionFixtures.bytes(path, at: 0, count: 34 * 512)
        let tail = try PartitionFixtures.bytes(path, at: (64 << 20) - 33 * 512, count: 33 * 512)
        var generator = SplitMix64(seed: 0x5EED)
        var outcomes = (ok: 0, warned: 0, failed: 0)
        for _ in 0..<300 {
            try PartitionFixtures.patch(path, at: 0, pristine)
            try PartitionFixtures.patch(path, at: (64 << 20) - 33 * 512, tail)
            for _ in 0..<Int.random(in: 1...6, using: &generator) {
                // Aim at the interesting bytes: MBR entries, both headers, first entries.
                let regions: [(UInt64, UInt64)] = [(446, 66), (512, 92), (1024, 512), ((64 << 20) - 512, 92)]
                let region = regions[Int.random(in: 0..<regions.count, using: &generator)]
                let offset = region.0 + UInt64.random(in: 0..<region.1, using: &generator)
                try PartitionFixtures.patch(path, at: offset, [UInt8.random(in: 0...255, using: &generator)])
            }
            do {
                let table = try PartitionTable.read(from: FileBlockDevice(path: path))
                if table.warnings.isEmpty { outcomes.ok += 1 } else { outcomes.warned += 1 }
                for partition in table.partitions {
                    #expect(partition.endOffset <= 64 << 20)
                }
            } catch is WispError {
                outcomes.failed += 1
            }
        }
        #expect(outcomes.ok + outcomes.warned + outcomes.failed == 300)
        #expect(outcomes.warned > 0)
    }
}

