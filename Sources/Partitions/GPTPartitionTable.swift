import WispCore

/// GUID Partition Table (UEFI spec ch. 5): a header at LBA 1 and its backup at the last LBA,
/// each CRC32-protected and pointing at its own CRC32-protected entry array. The sector size
/// is found by looking for "EFI PART" at 512 and at 4096 bytes. If the primary header or its
/// entries are damaged the backup is used, with a warning.
public enum GPTPartitionTable {
    static let signature = Array("EFI PART".utf8)
    /// Entries larger than this, or arrays larger than `maxArrayBytes`, are hostile: the
    /// spec's arrays are 16 KiB and entries 128 bytes.
    static let maxEntrySize: UInt32 = 4096
    static let maxArrayBytes: UInt64 = 8 << 20

    struct Header {
        var offset: UInt64
        var myLBA: UInt64
        var alternateLBA: UInt64
        var firstUsableLBA: UInt64
        var lastUsableLBA: UInt64
        var diskGUID: String
        var entriesLBA: UInt64
        var entryCount: UInt32
        var entrySize: UInt32
        var entriesCRC: UInt32
    }

    /// The GPT on `disk`, or nil if there is none (no "EFI PART" at either LBA 1 nor at the
    /// end, and no protective MBR).
    static func read(from disk: any BlockDevice, protectiveMBR mbr: MBRPartitionTable.BootRecord?) throws -> PartitionTable? {
        var sectorSize: Int?
        for candidate in [512, 4096] where disk.size >= UInt64(candidate) * 2 {
            if try disk.read(at: UInt64(candidate), count: 8) == signature {
                sectorSize = candidate
                break
            }
        }
        var warnings: [String] = []
        let protective = mbr?.hasProtectiveEntry ?? false
        if sectorSize == nil {
            // The primary is gone; a protective MBR or a backup header at the end still
            // says this is a GPT disk.
            for candidate in [512, 4096] where disk.size >= UInt64(candidate) * 2 && disk.size % UInt64(candidate) == 0 {
                if try disk.read(at: disk.size - UInt64(candidate), count: 8) == signature {
                    sectorSize = candidate
                    break
                }
            }
            guard let found = sectorSize else {
                if protective {
                    throw WispError.corrupt(disk.name, "GPT", at: 512,
                                            "the protective MBR announces a GPT but no \"EFI PART\" header was found at LBA 1 or at the end of the disk")
                }
                return nil
            }
            sectorSize = found
        }
        guard let sectorSize else { return nil }
        if !protective {
            warnings.append("the GPT has no protective MBR (no 0xEE entry in sector 0)")
        }
        let unit = UInt64(sectorSize)
        let lastLBA = disk.size / unit - 1

        var primaryProblem: String?
        var chosen: (header: Header, entries: [UInt8])?
        do {
            let header = try readHeader(disk, lba: 1, unit: unit, lastLBA: lastLBA)
            chosen = (header, try readEntries(disk, header: header, unit: unit))
        } catch let error as WispError {
            primaryProblem = error.message
        }
        var backupLBA = lastLBA
        if let header = chosen?.header, header.alternateLBA <= lastLBA, header.alternateLBA > 1 {
            backupLBA = header.alternateLBA
        } else if let header = chosen?.header {
            warnings.append("the primary GPT header places its backup at sector \(header.alternateLBA), outside the disk (last sector \(lastLBA))")
        }
        var backupProblem: String?
        var backup: (header: Header, entries: [UInt8])?
        do {
            let header = try readHeader(disk, lba: backupLBA, unit: unit, lastLBA: lastLBA)
            backup = (header, try readEntries(disk, header: header, unit: unit))
        } catch let error as WispError {
            backupProblem = error.message
        }
        if chosen == nil {
            guard let backup else {
                throw WispError.corrupt(disk.name, "GPT", "both headers are unusable: primary: \(primaryProblem ?? "?"); backup: \(backupProblem ?? "?")")
            }
            warnings.append("the primary GPT is damaged (\(primaryProblem ?? "?")); using the backup at sector \(backupLBA)")
            chosen = backup
        } else if let backupProblem {
            warnings.append("the backup GPT is damaged or missing (\(backupProblem))")
        }
        if let primary = chosen?.header, primary.lastUsableLBA > lastLBA {
            let pastEnd = "the primary GPT header (offset \(primary.offset + 48)) says the usable area ends at sector \(primary.lastUsableLBA), past the end of the disk (last sector \(lastLBA))"
            if let backup, backup.header.lastUsableLBA <= lastLBA {
                warnings.append("\(pastEnd); using the backup at sector \(backupLBA), which fits the disk")
                chosen = backup
            } else {
                warnings.append("\(pastEnd): the image may be truncated")
            }
        }
        guard let (header, entries) = chosen else { return nil }
        var partitions: [Partition] = []
        let size = Int(header.entrySize)
        for index in 0..<Int(header.entryCount) {
            let base = index * size
            let reader = ByteReader(Array(entries[base..<(base + size)]), source: disk.name, structure: "GPT entry \(index + 1)",
                                    baseOffset: header.entriesLBA * unit + UInt64(base))
            let typeBytes = try reader.slice(0, 16)
            if GUIDText.isZero(typeBytes) { continue }
            let first = try reader.u64le(32), last = try reader.u64le(40)
            guard first <= last else {
                warnings.append("GPT entry \(index + 1) ends (sector \(last)) before it starts (sector \(first)); ignored")
                continue
            }
            if first < header.firstUsableLBA || last > header.lastUsableLBA {
                warnings.append("partition \(index + 1) (sectors \(first)-\(last)) lies outside the usable area \(header.firstUsableLBA)-\(header.lastUsableLBA)")
            }
            let (start, o1) = first.multipliedReportingOverflow(by: unit)
            let (count, o2) = (last - first).addingReportingOverflow(1)
            let (bytes, o3) = count.multipliedReportingOverflow(by: unit)
            guard !o1, !o2, !o3 else {
                warnings.append("partition \(index + 1) has sector numbers too large to address; ignored")
                continue
            }
            partitions.append(Partition(number: index + 1, startOffset: start, size: bytes,
                                        name: decodeName(try reader.array(56, 72)),
                                        typeGUID: GUIDText.format(typeBytes),
                                        uniqueGUID: GUIDText.format(try reader.slice(16, 16)),
                                        attributes: try reader.u64le(48)))
        }
        let kept = PartitionTable.sanitize(partitions, disk: disk, warnings: &warnings)
        return PartitionTable(scheme: .gpt, sectorSize: sectorSize, partitions: kept, diskGUID: header.diskGUID,
                              warnings: warnings)
    }

    static func readHeader(_ disk: any BlockDevice, lba: UInt64, unit: UInt64, lastLBA: UInt64) throws -> Header {
        let where_ = lba == 1 ? "primary GPT header" : "backup GPT header"
        guard lba <= lastLBA else {
            throw WispError.corrupt(disk.name, where_, "sector \(lba) is past the end of the disk (last sector \(lastLBA))")
        }
        let offset = lba * unit
        let sector = try disk.read(at: offset, count: Int(unit))
        let reader = ByteReader(sector, source: disk.name, structure: where_, baseOffset: offset)
        guard Array(sector[0..<8]) == signature else {
            throw reader.error(at: 0, "no \"EFI PART\" signature")
        }
        let headerSize = try reader.u32le(12)
        guard headerSize >= 92, UInt64(headerSize) <= unit else {
            throw reader.error(at: 12, "header size \(headerSize) is not between 92 and the sector size \(unit)")
        }
        var covered = Array(sector[0..<Int(headerSize)])
        let stored = try reader.u32le(16)
        covered.putLE32(0, at: 16)
        let computed = CRC32.checksum(covered)
        guard stored == computed else {
            throw reader.error(at: 16, "header CRC32 is \(hex(stored)), the header's bytes give \(hex(computed))")
        }
        let myLBA = try reader.u64le(24)
        guard myLBA == lba else {
            throw reader.error(at: 24, "header says it lives at sector \(myLBA), but it was read from sector \(lba)")
        }
        let entryCount = try reader.u32le(80), entrySize = try reader.u32le(84)
        guard entrySize >= 128, entrySize <= maxEntrySize, entrySize % 128 == 0 else {
            throw reader.error(at: 84, "partition entry size \(entrySize) is not a multiple of 128 between 128 and \(maxEntrySize)")
        }
        guard UInt64(entryCount) * UInt64(entrySize) <= maxArrayBytes else {
            throw reader.error(at: 80, "\(entryCount) entries of \(entrySize) bytes exceed the \(maxArrayBytes)-byte limit for an entry array")
        }
        let first = try reader.u64le(40), last = try reader.u64le(48)
        let entriesLBA = try reader.u64le(72)
        try checkLBAs(reader, myLBA: myLBA, first: first, last: last, entriesLBA: entriesLBA,
                      entryBytes: UInt64(entryCount) * UInt64(entrySize), unit: unit, lastLBA: lastLBA)
        return Header(offset: offset, myLBA: myLBA, alternateLBA: try reader.u64le(32), firstUsableLBA: first,
                      lastUsableLBA: last, diskGUID: GUIDText.format(try reader.slice(56, 16)),
                      entriesLBA: entriesLBA, entryCount: entryCount, entrySize: entrySize,
                      entriesCRC: try reader.u32le(88))
    }

    /// The header's sector numbers against the disk and each other, the way the Linux kernel
    /// and sgdisk judge a header before trusting it: the usable area inside the disk and in
    /// order, the header and its entry array outside that area. Every sum is checked: a
    /// CRC-valid header may hold any 64-bit value in any field.
    static func checkLBAs(_ reader: ByteReader, myLBA: UInt64, first: UInt64, last: UInt64, entriesLBA: UInt64,
                          entryBytes: UInt64, unit: UInt64, lastLBA: UInt64) throws {
        // A usable area past the end of the disk is judged by the caller: a truncated image
        // keeps its primary; a header whose backup fits the disk loses to it.
        guard first <= last else {
            throw reader.error(at: 40, "first usable sector \(first) is after last usable sector \(last)")
        }
        guard myLBA < first || myLBA > last else {
            throw reader.error(at: 24, "the header's own sector \(myLBA) lies inside the usable area \(first)-\(last)")
        }
        // The entry array: whole sectors from entriesLBA, on the disk, outside the usable area.
        let sectors = entryBytes / unit + (entryBytes % unit == 0 ? 0 : 1)
        let (end, overflow) = entriesLBA.addingReportingOverflow(sectors)
        guard !overflow, sectors == 0 || end - 1 <= lastLBA else {
            throw reader.error(at: 72, "the entry array (\(sectors) sectors from sector \(entriesLBA)) reaches past the end of the disk (last sector \(lastLBA))")
        }
        guard sectors == 0 || end - 1 < first || entriesLBA > last else {
            throw reader.error(at: 72, "the entry array (sectors \(entriesLBA)-\(end - 1)) overlaps the usable area \(first)-\(last)")
        }
        guard sectors == 0 || myLBA < entriesLBA || myLBA >= end else {
            throw reader.error(at: 72, "the entry array (sectors \(entriesLBA)-\(end - 1)) overlaps the header's own sector \(myLBA)")
        }
    }

    static func readEntries(_ disk: any BlockDevice, header: Header, unit: UInt64) throws -> [UInt8] {
        let length = UInt64(header.entryCount) * UInt64(header.entrySize)
        let (offset, overflow) = header.entriesLBA.multipliedReportingOverflow(by: unit)
        let structure = header.myLBA == 1 ? "primary GPT entry array" : "backup GPT entry array"
        guard !overflow, offset <= disk.size, length <= disk.size - offset else {
            throw WispError.corrupt(disk.name, structure, at: overflow ? nil : offset,
                                    "\(length) bytes at sector \(header.entriesLBA) reach past the end of the disk")
        }
        let bytes = try disk.read(at: offset, count: Int(length))
        let computed = CRC32.checksum(bytes)
        guard computed == header.entriesCRC else {
            throw WispError.corrupt(disk.name, structure, at: offset,
                                    "CRC32 is \(hex(computed)), the header expects \(hex(header.entriesCRC))")
        }
        return bytes
    }

    /// UTF-16LE, up to 36 code units, NUL-terminated.
    static func decodeName(_ bytes: [UInt8]) -> String? {
        var units: [UInt16] = []
        var i = 0
        while i + 1 < bytes.count {
            let unit = UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8
            if unit == 0 { break }
            units.append(unit)
            i += 2
        }
        return units.isEmpty ? nil : String(decoding: units, as: UTF16.self)
    }

    static func hex(_ value: UInt32) -> String {
        let text = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - text.count) + text
    }
}
