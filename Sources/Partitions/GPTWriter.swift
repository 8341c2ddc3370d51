import Foundation
import WispCore

/// One partition to lay out: a type, its own GUID, a name, and a size in bytes (the
/// writer places it, 1 MiB aligned, after the previous one).
public struct GPTWriterPartition: Sendable, Equatable {
    public var typeGUID: UUID
    public var uniqueGUID: UUID
    /// At most 36 UTF-16 code units.
    public var name: String
    public var size: UInt64
    public var attributes: UInt64

    public init(typeGUID: UUID, uniqueGUID: UUID, name: String, size: UInt64, attributes: UInt64 = 0) {
        self.typeGUID = typeGUID
        self.uniqueGUID = uniqueGUID
        self.name = name
        self.size = size
        self.attributes = attributes
    }
}

/// Writes a GPT (UEFI spec ch. 5) as sgdisk lays one out on a 512-byte-sector disk: a
/// protective MBR, the primary header at LBA 1 with a 128-entry array at LBA 2, partitions
/// from LBA 2048 on 1 MiB boundaries, the backup array and header in the last 33 sectors.
/// Only the table's sectors are written: partition contents are the caller's.
public enum GPTWriter {
    public static let sectorSize: UInt64 = 512
    static let entryCount: UInt32 = 128
    static let entrySize: UInt32 = 128
    static let arraySectors: UInt64 = UInt64(entryCount * entrySize) / sectorSize
    /// Where partitions start: 1 MiB, sgdisk's and parted's default alignment.
    public static let alignment: UInt64 = 1 << 20

    /// The disk size that holds `partitions` (each rounded up to the alignment) plus the
    /// backup table, and each partition's byte offset.
    public static func layout(_ partitions: [GPTWriterPartition]) throws -> (diskSize: UInt64, offsets: [UInt64]) {
        var offset = alignment
        var offsets: [UInt64] = []
        for (i, partition) in partitions.enumerated() {
            guard partition.size > 0 else {
                throw WispError.invalidArgument("GPT partition \(i + 1): a partition cannot be empty")
            }
            offsets.append(offset)
            let (rounded, o1) = partition.size.addingReportingOverflow(alignment - 1)
            let (next, o2) = offset.addingReportingOverflow(rounded / alignment * alignment)
            guard !o1, !o2, next <= UInt64(Int64.max) / 2 else {
                throw WispError.invalidArgument("GPT partition \(i + 1): \(partition.size) bytes do not fit on a disk")
            }
            offset = next
        }
        // The backup array and header take 33 sectors; round the disk to the alignment.
        return (offset + alignment, offsets)
    }

    /// Writes the protective MBR and both GPT copies onto `disk`, whose size must be at
    /// least `layout(partitions).diskSize`; returns each partition's byte offset.
    @discardableResult
    public static func write(_ partitions: [GPTWriterPartition], diskGUID: UUID, to disk: any BlockDevice) throws -> [UInt64] {
        guard (1...Int(entryCount)).contains(partitions.count) else {
            throw WispError.invalidArgument("\(disk.name): a GPT holds 1 to \(entryCount) partitions, not \(partitions.count)")
        }
        let (needed, offsets) = try layout(partitions)
        guard disk.size >= needed, disk.size % sectorSize == 0 else {
            throw WispError.invalidArgument("\(disk.name): a \(disk.size)-byte disk cannot hold the GPT layout (needs \(needed) bytes in whole 512-byte sectors)")
        }
        let lastLBA = disk.size / sectorSize - 1
        let firstUsable: UInt64 = 2 + arraySectors
        let lastUsable = lastLBA - 1 - arraySectors
        var array = [UInt8](repeating: 0, count: Int(entryCount * entrySize))
        for (i, partition) in partitions.enumerated() {
            let name = Array(partition.name.utf16)
            guard name.count <= 36 else {
                throw WispError.invalidArgument("GPT partition \(i + 1): the name \"\(partition.name)\" is longer than 36 UTF-16 code units")
            }
            let base = i * Int(entrySize)
            put(guidBytes(partition.typeGUID), into: &array, at: base)
            put(guidBytes(partition.uniqueGUID), into: &array, at: base + 16)
            let first = offsets[i] / sectorSize
            let last = first + (partition.size + sectorSize - 1) / sectorSize - 1
            put(le(first), into: &array, at: base + 32)
            put(le(last), into: &array, at: base + 40)
            put(le(partition.attributes), into: &array, at: base + 48)
            for (j, unit) in name.enumerated() {
                array[base + 56 + 2 * j] = UInt8(unit & 0xFF)
                array[base + 57 + 2 * j] = UInt8(unit >> 8)
            }
        }
        let arrayCRC = CRC32.checksum(array)
        let backupArrayLBA = lastLBA - arraySectors
        let primary = header(myLBA: 1, alternateLBA: lastLBA, firstUsable: firstUsable, lastUsable: lastUsable,
                             diskGUID: diskGUID, arrayLBA: 2, arrayCRC: arrayCRC)
        let backup = header(myLBA: lastLBA, alternateLBA: 1, firstUsable: firstUsable, lastUsable: lastUsable,
                            diskGUID: diskGUID, arrayLBA: backupArrayLBA, arrayCRC: arrayCRC)
        try disk.write(protectiveMBR(lastLBA: lastLBA), at: 0)
        try disk.write(primary, at: sectorSize)
        try disk.write(array, at: 2 * sectorSize)
        try disk.write(array, at: backupArrayLBA * sectorSize)
        try disk.write(backup, at: lastLBA * sectorSize)
        return offsets
    }

    /// One 0xEE entry covering the disk (capped at 2^32 - 1 sectors, as the spec says).
    static func protectiveMBR(lastLBA: UInt64) -> [UInt8] {
        var sector = [UInt8](repeating: 0, count: Int(sectorSize))
        let entry = 446
        sector[entry + 1] = 0x00; sector[entry + 2] = 0x02; sector[entry + 3] = 0x00  // CHS 0/0/2
        sector[entry + 4] = 0xEE
        sector[entry + 5] = 0xFF; sector[entry + 6] = 0xFF; sector[entry + 7] = 0xFF
        put(le32(1), into: &sector, at: entry + 8)
        put(le32(UInt32(min(lastLBA, UInt64(UInt32.max)))), into: &sector, at: entry + 12)
        sector[510] = 0x55
        sector[511] = 0xAA
        return sector
    }

    static func header(myLBA: UInt64, alternateLBA: UInt64, firstUsable: UInt64, lastUsable: UInt64,
                       diskGUID: UUID, arrayLBA: UInt64, arrayCRC: UInt32) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: Int(sectorSize))
        put(Array("EFI PART".utf8), into: &h, at: 0)
        put(le32(0x0001_0000), into: &h, at: 8)  // revision 1.0
        put(le32(92), into: &h, at: 12)
        put(le(myLBA), into: &h, at: 24)
        put(le(alternateLBA), into: &h, at: 32)
        put(le(firstUsable), into: &h, at: 40)
        put(le(lastUsable), into: &h, at: 48)
        put(guidBytes(diskGUID), into: &h, at: 56)
        put(le(arrayLBA), into: &h, at: 72)
        put(le32(entryCount), into: &h, at: 80)
        put(le32(entrySize), into: &h, at: 84)
        put(le32(arrayCRC), into: &h, at: 88)
        put(le32(CRC32.checksum(h[0..<92])), into: &h, at: 16)
        return h
    }

    /// A UUID in GPT's mixed-endian form: the first three fields little-endian.
    public static func guidBytes(_ uuid: UUID) -> [UInt8] {
        let u = uuid.uuid
        return [u.3, u.2, u.1, u.0, u.5, u.4, u.7, u.6, u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15]
    }

    static func le(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
    static func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

    static func put(_ bytes: [UInt8], into buffer: inout [UInt8], at offset: Int) {
        buffer.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
    }
}
