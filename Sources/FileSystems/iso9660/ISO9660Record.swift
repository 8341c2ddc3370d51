import WispCore

/// One directory record (ECMA-119 9.1): where an entry's data lives, its flags and its
/// identifier, plus the System Use bytes that carry Rock Ridge. Records never cross a
/// 2048-byte sector; a zero length byte ends a sector's records.
struct ISO9660Record: Sendable {
    /// Byte offset of the record on the device (a file's inode number).
    var offset: UInt64
    var length: Int
    var extentLBA: UInt32
    /// Sectors of extended attribute record before the data.
    var extendedAttributeSectors: UInt8
    var dataLength: UInt32
    var recorded: Timestamp
    var flags: UInt8
    var fileUnitSize: UInt8
    var interleaveGap: UInt8
    var identifier: [UInt8]
    var systemUse: [UInt8]
    /// Device offset of `systemUse[0]`, for error messages.
    var systemUseOffset: UInt64

    static let minimumLength = 34
    static let flagHidden: UInt8 = 0x01, flagDirectory: UInt8 = 0x02, flagAssociated: UInt8 = 0x04
    static let flagMultiExtent: UInt8 = 0x80

    var isDirectory: Bool { flags & Self.flagDirectory != 0 }
    var isAssociated: Bool { flags & Self.flagAssociated != 0 }
    var continuesInNextRecord: Bool { flags & Self.flagMultiExtent != 0 }
    var isSelf: Bool { identifier == [0] }
    var isParent: Bool { identifier == [1] }

    /// Byte offset of the data (past any extended attribute record), checked for overflow.
    func dataOffset(sectorSize: UInt64) -> UInt64 {
        // Both factors are at most 32 bits: the sum cannot overflow 64 bits.
        (UInt64(extentLBA) + UInt64(extendedAttributeSectors)) * sectorSize
    }

    /// Parses the record starting at `start` in `sector` (one 2048-byte sector read from
    /// device offset `sectorOffset`). The caller has seen a non-zero length byte.
    static func parse(_ sector: [UInt8], at start: Int, sectorOffset: UInt64, source: String) throws -> ISO9660Record {
        let offset = sectorOffset + UInt64(start)
        let reader = ByteReader(sector, source: source, structure: "ISO 9660 directory record", baseOffset: sectorOffset)
        let length = Int(try reader.u8(start))
        guard length >= minimumLength else {
            throw WispError.corrupt(source, "ISO 9660 directory record", at: offset,
                                    "length \(length) is shorter than the \(minimumLength) bytes every record needs")
        }
        guard start + length <= sector.count else {
            throw WispError.corrupt(source, "ISO 9660 directory record", at: offset,
                                    "\(length) bytes cross the end of its sector")
        }
        let nameLength = Int(try reader.u8(start + 32))
        guard nameLength >= 1, 33 + nameLength <= length else {
            throw WispError.corrupt(source, "ISO 9660 directory record", at: offset,
                                    "identifier of \(nameLength) bytes does not fit a \(length)-byte record")
        }
        // The System Use area starts after the identifier and its padding byte (even lengths).
        let systemUseStart = min(33 + nameLength + (nameLength % 2 == 0 ? 1 : 0), length)
        return ISO9660Record(
            offset: offset, length: length, extentLBA: try reader.u32le(start + 2),
            extendedAttributeSectors: try reader.u8(start + 1), dataLength: try reader.u32le(start + 10),
            recorded: ISO9660Date.short(try reader.slice(start + 18, 7)), flags: try reader.u8(start + 25),
            fileUnitSize: try reader.u8(start + 26), interleaveGap: try reader.u8(start + 27),
            identifier: try reader.array(start + 33, nameLength),
            systemUse: try reader.array(start + systemUseStart, length - systemUseStart),
            systemUseOffset: offset + UInt64(systemUseStart))
    }

    /// The records of a directory's bytes (`bytes` read from `offset`, a whole number of
    /// sectors), "." and ".." included, in order.
    static func records(in bytes: [UInt8], at offset: UInt64, source: String) throws -> [ISO9660Record] {
        var records: [ISO9660Record] = []
        let sector = ISO9660Reader.sectorSize
        var sectorStart = 0
        while sectorStart < bytes.count {
            let sectorBytes = Array(bytes[sectorStart..<min(sectorStart + sector, bytes.count)])
            var position = 0
            while position < sectorBytes.count, sectorBytes[position] != 0 {
                let record = try parse(sectorBytes, at: position, sectorOffset: offset + UInt64(sectorStart), source: source)
                records.append(record)
                position += record.length
            }
            sectorStart += sector
        }
        return records
    }
}
