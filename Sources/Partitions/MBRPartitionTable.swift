import WispCore

/// The classic DOS partition table: four primary entries in sector 0, and for an extended
/// partition a chain of extended boot records (EBRs), each describing one logical partition
/// and linking to the next. Linux numbers primaries 1-4 by slot and logicals from 5.
public enum MBRPartitionTable {
    static let extendedTypes: Set<UInt8> = [0x05, 0x0F, 0x85]
    /// Linux stops at a few hundred partitions; a longer EBR chain is hostile.
    static let maxLogicalPartitions = 256

    struct Entry {
        var status: UInt8
        var type: UInt8
        var firstLBA: UInt32
        var sectorCount: UInt32
        var isEmpty: Bool { type == 0 || sectorCount == 0 }
    }

    struct BootRecord {
        var entries: [Entry]
        var signature: UInt32
        var hasProtectiveEntry: Bool { entries.contains { $0.type == 0xEE } }
        /// Whether the four entries look like a partition table rather than boot code or a
        /// FAT boot sector: status bytes are 0x00/0x80 and at least one entry is in use.
        var isPartitionTable: Bool
    }

    /// Sector 0 if it carries the 0x55AA signature.
    static func readBootRecord(_ disk: any BlockDevice) throws -> BootRecord? {
        guard disk.size >= 512 else { return nil }
        let sector = try disk.read(at: 0, count: 512)
        guard sector[510] == 0x55, sector[511] == 0xAA else { return nil }
        let entries = try parseEntries(sector, source: disk.name, structure: "MBR", base: 0)
        let statusesValid = entries.allSatisfy { $0.status == 0 || $0.status == 0x80 }
        let used = entries.contains { !$0.isEmpty }
        // A FAT or NTFS boot sector on a whole disk also ends in 55AA; its boot code
        // leaves the entry area zero or fails the status check, so it is no table.
        let reader = ByteReader(sector, source: disk.name, structure: "MBR")
        let signature = try reader.u32le(440)
        return BootRecord(entries: entries, signature: signature, isPartitionTable: statusesValid && used)
    }

    static func parseEntries(_ sector: [UInt8], source: String, structure: String, base: UInt64) throws -> [Entry] {
        let reader = ByteReader(sector, source: source, structure: structure, baseOffset: base)
        return try (0..<4).map { i in
            let o = 446 + 16 * i
            return Entry(status: try reader.u8(o), type: try reader.u8(o + 4),
                         firstLBA: try reader.u32le(o + 8), sectorCount: try reader.u32le(o + 12))
        }
    }

    static func read(from disk: any BlockDevice, bootRecord: BootRecord, sectorSize: Int) throws -> PartitionTable {
        var warnings: [String] = []
        var partitions: [Partition] = []
        let unit = UInt64(sectorSize)
        var extended: [(number: Int, start: UInt64, sectors: UInt64)] = []
        for (slot, entry) in bootRecord.entries.enumerated() where !entry.isEmpty {
            let number = slot + 1
            partitions.append(Partition(number: number, startOffset: UInt64(entry.firstLBA) * unit,
                                        size: UInt64(entry.sectorCount) * unit, mbrType: entry.type,
                                        bootable: entry.status == 0x80))
            if extendedTypes.contains(entry.type) {
                extended.append((number, UInt64(entry.firstLBA), UInt64(entry.sectorCount)))
            }
        }
        if extended.count > 1 {
            warnings.append("the MBR has \(extended.count) extended partitions; only the first is read, as Linux does")
        }
        if let container = extended.first {
            partitions += try readLogical(disk, extendedStart: container.start, extendedSectors: container.sectors,
                                          unit: unit, warnings: &warnings)
        }
        let kept = PartitionTable.sanitize(partitions, disk: disk, warnings: &warnings)
        let signature = bootRecord.signature
        let hex = String(signature, radix: 16)
        return PartitionTable(scheme: .mbr, sectorSize: sectorSize, partitions: kept,
                              diskGUID: signature == 0 ? nil : String(repeating: "0", count: 8 - hex.count) + hex,
                              warnings: warnings)
    }

    /// Walks the EBR chain. Each EBR's first entry is a logical partition relative to the
    /// EBR itself; its second entry points at the next EBR relative to the extended
    /// partition's start. Loops and runaway chains end with a warning.
    static func readLogical(_ disk: any BlockDevice, extendedStart: UInt64, extendedSectors: UInt64, unit: UInt64,
                            warnings: inout [String]) throws -> [Partition] {
        var logical: [Partition] = []
        var visited: Set<UInt64> = []
        var ebrLBA = extendedStart
        var number = 5
        while true {
            guard visited.insert(ebrLBA).inserted else {
                warnings.append("the extended partition's EBR chain loops back to sector \(ebrLBA); stopped there")
                break
            }
            guard logical.count < maxLogicalPartitions else {
                warnings.append("the EBR chain has more than \(maxLogicalPartitions) logical partitions; stopped there")
                break
            }
            let (offset, overflow) = ebrLBA.multipliedReportingOverflow(by: unit)
            guard !overflow, offset <= disk.size, disk.size - offset >= 512 else {
                warnings.append("EBR at sector \(ebrLBA) lies past the end of the disk; logical partitions from \(number) on are missing")
                break
            }
            let sector = try disk.read(at: offset, count: 512)
            guard sector[510] == 0x55, sector[511] == 0xAA else {
                warnings.append("EBR at sector \(ebrLBA) has no 55AA signature; logical partitions from \(number) on are missing")
                break
            }
            let entries = try parseEntries(sector, source: disk.name, structure: "EBR", base: offset)
            let this = entries[0], next = entries[1]
            if !this.isEmpty {
                logical.append(Partition(number: number, startOffset: (ebrLBA + UInt64(this.firstLBA)) * unit,
                                         size: UInt64(this.sectorCount) * unit, mbrType: this.type,
                                         bootable: this.status == 0x80))
                number += 1
            }
            guard !next.isEmpty, extendedTypes.contains(next.type) || next.type != 0 else { break }
            let nextLBA = extendedStart + UInt64(next.firstLBA)
            if UInt64(next.firstLBA) >= extendedSectors {
                warnings.append("EBR at sector \(ebrLBA) links to sector \(nextLBA), outside the extended partition; stopped there")
                break
            }
            ebrLBA = nextLBA
        }
        return logical
    }
}
