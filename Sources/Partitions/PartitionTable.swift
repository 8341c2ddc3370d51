import WispCore

/// A disk's partition table as Linux would see it: GPT (with its protective MBR), plain MBR
/// with extended/logical partitions, or none (a filesystem on the whole disk, shown as one
/// pseudo-partition numbered 0). Problems that still leave a usable table (a damaged primary
/// GPT header with an intact backup, a partition running past the end of a truncated
/// image, overlaps) are `warnings`; a table that cannot be trusted at all is an error.
public struct PartitionTable: Sendable, Codable, Equatable {
    public var scheme: PartitionScheme
    /// Logical sector size the table is expressed in (512 or 4096).
    public var sectorSize: Int
    public var partitions: [Partition]
    /// GPT disk GUID, or the MBR disk signature as 8 hex digits.
    public var diskGUID: String?
    public var warnings: [String]

    public init(scheme: PartitionScheme, sectorSize: Int, partitions: [Partition], diskGUID: String?,
                warnings: [String] = []) {
        self.scheme = scheme
        self.sectorSize = sectorSize
        self.partitions = partitions
        self.diskGUID = diskGUID
        self.warnings = warnings
    }

    /// Reads the table on `disk`. `mbrSectorSize` is the sector size MBR entries count in
    /// (an MBR carries no record of it; 512 unless the caller knows better). GPT finds its
    /// own sector size by looking for its header at 512 and at 4096 bytes.
    public static func read(from disk: any BlockDevice, mbrSectorSize: Int = 512) throws -> PartitionTable {
        guard [512, 1024, 2048, 4096].contains(mbrSectorSize) else {
            throw WispError.invalidArgument("\(disk.name): sector size \(mbrSectorSize) is not 512, 1024, 2048 or 4096")
        }
        let mbr = try MBRPartitionTable.readBootRecord(disk)
        // A real MBR table without a protective entry wins over a GPT header, as in Linux:
        // the GPT is a leftover from before the disk was repartitioned.
        if let mbr, mbr.isPartitionTable, !mbr.hasProtectiveEntry {
            var table = try MBRPartitionTable.read(from: disk, bootRecord: mbr, sectorSize: mbrSectorSize)
            if disk.size >= 1024, try disk.read(at: 512, count: 8) == GPTPartitionTable.signature {
                table.warnings.append("a GPT header at sector 1 is ignored: the MBR has partitions and no protective entry")
            }
            return table
        }
        if let gpt = try GPTPartitionTable.read(from: disk, protectiveMBR: mbr) {
            return gpt
        }
        if let mbr, mbr.isPartitionTable {
            return try MBRPartitionTable.read(from: disk, bootRecord: mbr, sectorSize: mbrSectorSize)
        }
        return wholeDisk(disk)
    }

    /// No table: the whole device as partition 0.
    public static func wholeDisk(_ disk: any BlockDevice) -> PartitionTable {
        PartitionTable(scheme: .none, sectorSize: 512,
                       partitions: [Partition(number: 0, startOffset: 0, size: disk.size)],
                       diskGUID: nil)
    }

    /// Checks partitions against the disk: those starting past its end are dropped, those
    /// running past it are cut to it (as Linux does), overlaps are reported.
    static func sanitize(_ partitions: [Partition], disk: any BlockDevice, warnings: inout [String]) -> [Partition] {
        var kept: [Partition] = []
        for var partition in partitions {
            if partition.size == 0 {
                warnings.append("partition \(partition.number) is empty; ignored")
                continue
            }
            if partition.startOffset >= disk.size {
                warnings.append("partition \(partition.number) starts at byte \(partition.startOffset), past the end of the disk (\(disk.size) bytes); ignored")
                continue
            }
            let (end, overflow) = partition.startOffset.addingReportingOverflow(partition.size)
            if overflow || end > disk.size {
                warnings.append("partition \(partition.number) ends past the end of the disk (\(disk.size) bytes); truncated to it")
                partition.size = disk.size - partition.startOffset
            }
            kept.append(partition)
        }
        // An extended partition contains its logical partitions by design.
        let sorted = kept.filter { !$0.isExtendedContainer }.sorted { $0.startOffset < $1.startOffset }
        if sorted.count > 1 {
            for i in 1..<sorted.count where sorted[i].startOffset < sorted[i - 1].endOffset {
                warnings.append("partitions \(sorted[i - 1].number) and \(sorted[i].number) overlap")
            }
        }
        return kept
    }

    /// The partition with Linux number `number`.
    public func partition(number: Int) -> Partition? {
        partitions.first { $0.number == number }
    }
}
