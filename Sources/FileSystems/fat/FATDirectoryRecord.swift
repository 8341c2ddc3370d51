import WispCore

/// One file or directory as a FAT directory describes it: its 32-byte short entry (where it
/// lives on the device is its inode number) and the long name that precedes it, if valid.
struct FATDirectoryRecord: Sendable {
    var name: String
    var entryOffset: UInt64
    var attributes: UInt8
    var firstCluster: UInt32
    var size: UInt32
    var modification: Timestamp
    var access: Timestamp
    var creation: Timestamp

    var isDirectory: Bool { attributes & 0x10 != 0 }
    var isReadOnly: Bool { attributes & 0x01 != 0 }

    static let attrReadOnly: UInt8 = 0x01, attrVolume: UInt8 = 0x08, attrLongName: UInt8 = 0x0F

    /// Decodes a short entry's fields (the name is filled in by the directory walk).
    static func parseShort(_ e: ArraySlice<UInt8>, offset: UInt64, variant: FATBootSector.Variant) -> FATDirectoryRecord {
        let b = e.startIndex
        func u16(_ i: Int) -> UInt16 { UInt16(e[b + i]) | UInt16(e[b + i + 1]) << 8 }
        let high = variant == .fat32 ? UInt32(u16(20)) << 16 : 0
        return FATDirectoryRecord(
            name: "", entryOffset: offset, attributes: e[b + 11],
            firstCluster: (high | UInt32(u16(26))) & 0x0FFF_FFFF,
            size: UInt32(u16(28)) | UInt32(u16(30)) << 16,
            modification: FATTime.timestamp(date: u16(24), time: u16(22)),
            access: FATTime.timestamp(date: u16(18), time: 0),
            creation: FATTime.timestamp(date: u16(16), time: u16(14)))
    }

    /// Walks raw directory bytes (`segments`: device offset and bytes of each contiguous
    /// piece) and returns the live entries with their long or short names. Deleted entries,
    /// the volume label, "." and ".." are skipped; a long name whose sequence or checksum
    /// does not match its short entry is ignored in favour of the short name, as Windows
    /// and Linux do. `volumeLabel` receives the label entry if one is met.
    static func parse(segments: [(offset: UInt64, bytes: [UInt8])], variant: FATBootSector.Variant,
                      volumeLabel: inout String?) -> [FATDirectoryRecord] {
        var records: [FATDirectoryRecord] = []
        var pending: [UInt16] = []
        var expected = 0          // next sequence number the long-name run needs (0: none)
        var checksum: UInt8 = 0
        var complete = false
        func reset() { pending = []; expected = 0; complete = false }
        outer: for segment in segments {
            var i = 0
            while i + 32 <= segment.bytes.count {
                defer { i += 32 }
                let e = segment.bytes[i..<(i + 32)]
                let first = e[e.startIndex]
                if first == 0x00 { break outer }
                if first == 0xE5 { reset(); continue }
                let attributes = e[e.startIndex + 11]
                if attributes & 0x3F == attrLongName {
                    let order = Int(first & 0x1F)
                    let sum = e[e.startIndex + 13]
                    let valid = e[e.startIndex + 12] == 0 && e[e.startIndex + 26] == 0 && e[e.startIndex + 27] == 0
                    if first & 0x40 != 0, (1...20).contains(order), valid {
                        pending = [UInt16](repeating: 0xFFFF, count: order * 13)
                        checksum = sum
                        expected = order
                        complete = false
                    } else if valid, expected > 1, order == expected - 1, sum == checksum {
                        expected = order
                    } else {
                        reset()
                        continue
                    }
                    let units = FATName.longNameUnits(e)
                    pending.replaceSubrange(((order - 1) * 13)..<(order * 13), with: units)
                    complete = order == 1
                    continue
                }
                let rawName = Array(e.prefix(11))
                defer { reset() }
                if attributes & attrVolume != 0 {
                    if attributes & 0x10 == 0 {
                        volumeLabel = FATName.decodeOEM(rawName).trimmingTrailingSpaces()
                    }
                    continue
                }
                if rawName[0] == 0x2E, rawName[1...].allSatisfy({ $0 == 0x20 || $0 == 0x2E }) { continue }
                var record = parseShort(e, offset: segment.offset + UInt64(i), variant: variant)
                var name = ""
                if complete, FATName.shortNameChecksum(rawName) == checksum {
                    name = FATName.decodeLongName(pending)
                }
                if name.isEmpty {
                    name = FATName.displayShortName(rawName, caseFlags: e[e.startIndex + 12])
                }
                // Names that cannot be path components are hostile; leave them out.
                if name.isEmpty || name == "." || name == ".." || name.utf8.contains(0x2F) || name.utf8.contains(0) { continue }  // bytes: String.contains(String) is NSString search here
                record.name = name
                records.append(record)
            }
        }
        return records
    }
}
