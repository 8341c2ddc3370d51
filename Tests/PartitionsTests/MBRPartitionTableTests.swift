import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import Partitions

@Suite struct MBRPartitionTableTests {
    func makeDisk(_ dir: TemporaryDirectory) throws -> String {
        let path = dir.file("mbr.img")
        try PartitionFixtures.blankDisk(path, size: 64 << 20)
        let script = """
        label: dos
        label-id: 0x1234abcd
        start=2048, size=10M, type=83, bootable
        size=10M, type=c
        size=30M, type=5
        size=5M, type=83
        size=5M, type=82
        size=5M, type=83
        size=5M, type=7

        """
        try ToolRunner.check("sfdisk", [path], input: Data(script.utf8))
        return path
    }

    @Test func readsPrimaryExtendedAndLogicalLikeSfdisk() throws {
        let dir = try TemporaryDirectory("mbr")
        let path = try makeDisk(dir)
        let table = try PartitionTable.read(from: FileBlockDevice(path: path))
        let judge = try PartitionFixtures.sfdiskJSON(path)
        #expect(table.scheme == .mbr)
        #expect(table.warnings == [])
        #expect(table.diskGUID == "1234abcd")
        let expected = try #require(judge["partitions"] as? [[String: Any]])
        #expect(table.partitions.count == expected.count)
        for entry in expected {
            let node = try #require(entry["node"] as? String)
            let number = try #require(Int(node.dropFirst(path.count)))
            let partition = try #require(table.partition(number: number))
            #expect(partition.startOffset == UInt64(try #require(entry["start"] as? Int)) * 512)
            #expect(partition.size == UInt64(try #require(entry["size"] as? Int)) * 512)
            #expect(partition.mbrType == UInt8(try #require(entry["type"] as? String), radix: 16))
            #expect(partition.bootable == (entry["bootable"] as? Bool ?? false))
        }
        #expect(table.partitions.filter { $0.number >= 5 }.map(\.number) == [5, 6, 7])
        #expect(table.partition(number: 3)?.isExtendedContainer == true)
    }

    @Test func ebrLoopEndsWithAWarning() throws {
        let dir = try TemporaryDirectory("mbrloop")
        let path = try makeDisk(dir)
        let table = try PartitionTable.read(from: FileBlockDevice(path: path))
        let extended = try #require(table.partition(number: 3))
        // Point the second EBR's link back at the first EBR (relative offset 0 would end
        // the chain, so link to the second EBR itself).
        let first = try PartitionFixtures.bytes(path, at: extended.startOffset, count: 512)
        let secondRelative = UInt32(first[446 + 16 + 8]) | UInt32(first[446 + 16 + 9]) << 8
            | UInt32(first[446 + 16 + 10]) << 16 | UInt32(first[446 + 16 + 11]) << 24
        let secondOffset = extended.startOffset + UInt64(secondRelative) * 512
        var link = [UInt8](repeating: 0, count: 4)
        link.putLE32(secondRelative, at: 0)
        try PartitionFixtures.patch(path, at: secondOffset + 446 + 16 + 8, link)
        let looped = try PartitionTable.read(from: FileBlockDevice(path: path))
        #expect(looped.warnings.contains { $0.contains("loops") })
        #expect(looped.partitions.filter { $0.number >= 5 }.map(\.number) == [5, 6])
    }

    @Test func ebrLinkOutsideTheExtendedPartitionStops() throws {
        let dir = try TemporaryDirectory("mbrout")
        let path = try makeDisk(dir)
        let table = try PartitionTable.read(from: FileBlockDevice(path: path))
        let extended = try #require(table.partition(number: 3))
        try PartitionFixtures.patch(path, at: extended.startOffset + 446 + 16 + 8, [0xFF, 0xFF, 0xFF, 0x7F])
        let cut = try PartitionTable.read(from: FileBlockDevice(path: path))
        #expect(cut.warnings.contains { $0.contains("outside the extended partition") })
        #expect(cut.partitions.filter { $0.number >= 5 }.map(\.number) == [5])
    }

    @Test func wholeDiskFilesystemHasNoTable() throws {
        let dir = try TemporaryDirectory("whole")
        for (tool, args) in [("mkfs.vfat", ["-C"]), ("mkfs.ext4", ["-q", "-F"])] {
            let path = dir.file("\(tool).img")
            if tool == "mkfs.vfat" {
                try ToolRunner.check(tool, args + [path, "16384"])
            } else {
                try PartitionFixtures.blankDisk(path, size: 16 << 20)
                try ToolRunner.check(tool, args + [path])
            }
            let table = try PartitionTable.read(from: FileBlockDevice(path: path))
            #expect(table.scheme == .none, "\(tool)")
            #expect(table.partitions == [Partition(number: 0, startOffset: 0, size: 16 << 20)])
            // sfdisk agrees there are no partitions.
            let judge = try ToolRunner.run("sfdisk", ["--json", path])
            #expect(!judge.stdoutText.contains("\"partitions\""))
        }
    }

    @Test func seededCorruptionNeverCrashes() throws {
        let dir = try TemporaryDirectory("mbrfuzz")
        let path = try makeDisk(dir)
        let table = try PartitionTable.read(from: FileBlockDevice(path: path))
        let extended = try #require(table.partition(number: 3))
        let mbr = try PartitionFixtures.bytes(path, at: 0, count: 512)
        let ebrs = try PartitionFixtures.bytes(path, at: extended.startOffset, count: Int(extended.size))
        var generator = SplitMix64(seed: 0xEB12)
        for _ in 0..<200 {
            try PartitionFixtures.patch(path, at: 0, mbr)
            try PartitionFixtures.patch(path, at: extended.startOffset, ebrs)
            for _ in 0..<Int.random(in: 1...6, using: &generator) {
                let chain = table.partitions.filter { $0.number >= 5 }.map { $0.startOffset - 2048 * 512 }
                let base = ([UInt64(0), extended.startOffset] + chain)[Int.random(in: 0..<(2 + chain.count), using: &generator)]
                let offset = base + 446 + UInt64.random(in: 0..<66, using: &generator)
                try PartitionFixtures.patch(path, at: offset, [UInt8.random(in: 0...255, using: &generator)])
            }
            do {
                let damaged = try PartitionTable.read(from: FileBlockDevice(path: path))
                for partition in damaged.partitions { #expect(partition.endOffset <= 64 << 20) }
                #expect(damaged.partitions.count <= 4 + MBRPartitionTable.maxLogicalPartitions)
            } catch is WispError {}
        }
    }
}

@Suite struct MixedTableTests {
    /// sfdisk writes a DOS table over a GPT disk but leaves no protective entry: like
    /// Linux (and sfdisk itself), the MBR wins.
    @Test func mbrWithoutProtectiveEntryWinsOverALeftoverGPTHeader() throws {
        let dir = try TemporaryDirectory("mixed")
        let path = dir.file("mixed.img")
        try PartitionFixtures.blankDisk(path, size: 32 << 20)
        try ToolRunner.check("sgdisk", ["-n", "1:2048:+4M", path])
        let gptHeader = try PartitionFixtures.bytes(path, at: 512, count: 512)
        try ToolRunner.check("sfdisk", ["--wipe", "never", path], input: Data("label: dos\nstart=4096, size=8192, type=83\n".utf8))
        try PartitionFixtures.patch(path, at: 512, gptHeader)
        let table = try PartitionTable.read(from: FileBlockDevice(path: path))
        let judge = try PartitionFixtures.sfdiskJSON(path)
        #expect(judge["label"] as? String == "dos")
        #expect(table.scheme == .mbr)
        #expect(table.partitions.map(\.startOffset) == [4096 * 512])
        #expect(table.warnings.contains { $0.contains("GPT header at sector 1 is ignored") })
    }
}
