import WispCore

/// The bytes of a laid-out image: descriptors, path tables, directory extents and
/// continuation areas (the metadata), then file data at the extents chosen by the layout.
extension ISO9660Layout {
    func metadata() -> [UInt8] {
        var image = [UInt8](repeating: 0, count: metadataSectors * Self.sector)
        func place(_ bytes: [UInt8], sector: Int) {
            image.replaceSubrange(sector * Self.sector..<(sector * Self.sector + bytes.count), with: bytes)
        }
        place(volumeDescriptor(joliet: false), sector: 16)
        if writer.joliet { place(volumeDescriptor(joliet: true), sector: 17) }
        var terminator = [UInt8](repeating: 0, count: Self.sector)
        terminator[0] = 255
        terminator.replaceSubrange(1..<6, with: Array("CD001".utf8))
        terminator[6] = 1
        place(terminator, sector: writer.joliet ? 18 : 17)

        place(pathTable(isoDirectories, bigEndian: false, joliet: false), sector: isoLPathSector)
        place(pathTable(isoDirectories, bigEndian: true, joliet: false), sector: isoMPathSector)
        if writer.joliet {
            place(pathTable(jolietDirectories, bigEndian: false, joliet: true), sector: jolietLPathSector)
            place(pathTable(jolietDirectories, bigEndian: true, joliet: true), sector: jolietMPathSector)
        }
        for directory in isoDirectories {
            let records = directory.isoRecords.map { record -> [UInt8] in
                var systemUse = record.inlineSystemUse
                if let continuation = record.continuation {
                    var entry: [UInt8] = [0x43, 0x45, 28, 1] + [UInt8](repeating: 0, count: 24)
                    ISOBytes.putBoth32(&entry, 4, UInt32(record.continuationSector))
                    ISOBytes.putBoth32(&entry, 12, UInt32(record.continuationOffset))
                    ISOBytes.putBoth32(&entry, 20, UInt32(continuation.count))
                    systemUse += entry
                }
                let (extent, size) = primaryExtent(record.target)
                return Self.directoryRecord(extent: extent, size: size, isDirectory: record.target.isDirectory,
                                            identifier: record.identifier, systemUse: systemUse, timestamp: writer.timestamp)
            }
            place(Self.packRecords(records), sector: directory.isoExtent)
        }
        for directory in jolietDirectories {
            let parent = directory.parent ?? directory
            var records = [
                Self.directoryRecord(extent: directory.jolietExtent, size: directory.jolietExtentBytes, isDirectory: true,
                                     identifier: [0], systemUse: [], timestamp: writer.timestamp),
                Self.directoryRecord(extent: parent.jolietExtent, size: parent.jolietExtentBytes, isDirectory: true,
                                     identifier: [1], systemUse: [], timestamp: writer.timestamp),
            ]
            for child in directory.jolietChildren {
                let extent = child.isDirectory ? child.jolietExtent : child.dataExtent
                let size = child.isDirectory ? child.jolietExtentBytes : child.dataSize
                records.append(Self.directoryRecord(extent: extent, size: size, isDirectory: child.isDirectory,
                                                    identifier: child.jolietIdentifier, systemUse: [], timestamp: writer.timestamp))
            }
            place(Self.packRecords(records), sector: directory.jolietExtent)
        }
        for record in continuationRecords {
            guard let continuation = record.continuation else { continue }
            let start = record.continuationSector * Self.sector + record.continuationOffset
            image.replaceSubrange(start..<(start + continuation.count), with: continuation)
        }
        return image
    }

    /// The complete image in memory.
    func bytes() -> [UInt8] {
        var image = metadata()
        image += [UInt8](repeating: 0, count: (totalSectors - metadataSectors) * Self.sector)
        for file in files {
            guard case .file(let data) = file.kind, !data.isEmpty else { continue }
            let start = file.dataExtent * Self.sector
            image.replaceSubrange(start..<(start + data.count), with: data)
        }
        return image
    }

    /// Writes metadata and file data with positioned writes; the final size pads the last
    /// file's sector with zeros.
    func write(to file: PosixFile) throws {
        let meta = metadata()
        try meta.withUnsafeBytes { try file.write($0, at: 0) }
        for node in files {
            guard case .file(let data) = node.kind, !data.isEmpty else { continue }
            try data.withUnsafeBytes { try file.write($0, at: UInt64(node.dataExtent) * UInt64(Self.sector)) }
        }
        try file.truncate(to: UInt64(totalSectors) * UInt64(Self.sector))
    }

    private func primaryExtent(_ node: ISONode) -> (Int, Int) {
        switch node.kind {
        case .directory: return (node.isoExtent, node.isoExtentBytes)
        case .file: return (node.dataExtent, node.dataSize)
        case .symlink: return (0, 0)
        }
    }

    static func directoryRecord(extent: Int, size: Int, isDirectory: Bool, identifier: [UInt8],
                                systemUse: [UInt8], timestamp: Int64) -> [UInt8] {
        let pad = identifier.count % 2 == 0 ? 1 : 0
        var length = 33 + identifier.count + pad + systemUse.count
        length += length % 2
        var record = [UInt8](repeating: 0, count: length)
        record[0] = UInt8(length)
        ISOBytes.putBoth32(&record, 2, UInt32(extent))
        ISOBytes.putBoth32(&record, 10, UInt32(size))
        record.replaceSubrange(18..<25, with: ISOBytes.recordDate(timestamp))
        record[25] = isDirectory ? 0x02 : 0
        ISOBytes.putBoth16(&record, 28, 1)
        record[32] = UInt8(identifier.count)
        record.replaceSubrange(33..<(33 + identifier.count), with: identifier)
        let su = 33 + identifier.count + pad
        record.replaceSubrange(su..<(su + systemUse.count), with: systemUse)
        return record
    }

    /// Records in sector-sized runs; a record that would cross a boundary starts the next sector.
    static func packRecords(_ records: [[UInt8]]) -> [UInt8] {
        var extent: [UInt8] = []
        var used = 0
        for record in records {
            if used + record.count > sector {
                extent += [UInt8](repeating: 0, count: sector - used)
                used = 0
            }
            extent += record
            used += record.count
        }
        return extent
    }

    private func pathTable(_ directories: [ISONode], bigEndian: Bool, joliet: Bool) -> [UInt8] {
        var table: [UInt8] = []
        for directory in directories {
            let identifier = joliet ? directory.jolietIdentifier : directory.isoIdentifier
            let extent = joliet ? directory.jolietExtent : directory.isoExtent
            let parentNumber = directory.parent.map { joliet ? $0.jolietDirectoryNumber : $0.isoDirectoryNumber } ?? 1
            var entry = [UInt8](repeating: 0, count: 8 + identifier.count + identifier.count % 2)
            entry[0] = UInt8(identifier.count)
            if bigEndian {
                entry.putBE32(UInt32(extent), at: 2)
                entry.putBE16(UInt16(truncatingIfNeeded: parentNumber), at: 6)
            } else {
                entry.putLE32(UInt32(extent), at: 2)
                entry.putLE16(UInt16(truncatingIfNeeded: parentNumber), at: 6)
            }
            entry.replaceSubrange(8..<(8 + identifier.count), with: identifier)
            table += entry
        }
        return table
    }

    private func volumeDescriptor(joliet: Bool) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: Self.sector)
        d[0] = joliet ? 2 : 1
        d.replaceSubrange(1..<6, with: Array("CD001".utf8))
        d[6] = 1
        func text(_ value: String, _ offset: Int, _ width: Int) {
            var field: [UInt8]
            if joliet {
                field = value.utf16.prefix(width / 2).flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
                while field.count + 2 <= width { field += [0x00, 0x20] }
                while field.count < width { field.append(0) }
            } else {
                field = Array(value.utf8.prefix(width))
                field += [UInt8](repeating: 0x20, count: width - field.count)
            }
            d.replaceSubrange(offset..<(offset + width), with: field)
        }
        text(writer.systemID, 8, 32)
        text(writer.volumeID, 40, 32)
        ISOBytes.putBoth32(&d, 80, UInt32(totalSectors))
        if joliet { d[88] = 0x25; d[89] = 0x2F; d[90] = 0x45 }  // "%/E": UCS-2 level 3
        ISOBytes.putBoth16(&d, 120, 1)
        ISOBytes.putBoth16(&d, 124, 1)
        ISOBytes.putBoth16(&d, 128, UInt16(Self.sector))
        let tableBytes = joliet ? jolietPathTableBytes : isoPathTableBytes
        ISOBytes.putBoth32(&d, 132, UInt32(tableBytes))
        d.putLE32(UInt32(joliet ? jolietLPathSector : isoLPathSector), at: 140)
        d.putBE32(UInt32(joliet ? jolietMPathSector : isoMPathSector), at: 148)
        let rootRecord = Self.directoryRecord(
            extent: joliet ? root.jolietExtent : root.isoExtent,
            size: joliet ? root.jolietExtentBytes : root.isoExtentBytes,
            isDirectory: true, identifier: [0], systemUse: [], timestamp: writer.timestamp)
        d.replaceSubrange(156..<190, with: rootRecord)
        text("", 190, 128)
        text("", 318, 128)
        text("", 446, 128)
        text(writer.applicationID, 574, 128)
        text("", 702, 37)
        text("", 739, 37)
        text("", 776, 37)
        d.replaceSubrange(813..<830, with: ISOBytes.volumeDate(writer.timestamp))
        d.replaceSubrange(830..<847, with: ISOBytes.volumeDate(writer.timestamp))
        d.replaceSubrange(847..<864, with: ISOBytes.volumeDate(nil))
        d.replaceSubrange(864..<881, with: ISOBytes.volumeDate(nil))
        d[881] = 1
        return d
    }
}
