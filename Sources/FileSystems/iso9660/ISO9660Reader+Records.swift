import WispCore

/// Finding records: an inode number read back as its record, a directory's records, the
/// parts of a multi-extent file, and the parent check that keeps the tree a tree.
extension ISO9660Reader {
    /// What an inode number stands for: its record, Rock Ridge entries, and for a
    /// directory the offset of its extent.
    struct Node {
        var record: ISO9660Record
        var use: ISO9660SystemUse?
        var directoryOffset: UInt64?
    }

    struct Extent {
        var deviceOffset: UInt64
        var length: UInt64
        var recordOffset: UInt64
    }

    /// The record at a byte offset of the device (it must start with a non-zero length).
    static func record(on device: any BlockDevice, at offset: UInt64) throws -> ISO9660Record {
        let sector = UInt64(sectorSize)
        let sectorStart = offset - offset % sector
        guard device.size >= sectorStart, device.size - sectorStart >= sector else {
            throw WispError.corrupt(device.name, "ISO 9660 directory record", at: offset,
                                    "lies past the end of the image (\(device.size) bytes)")
        }
        let bytes = try device.read(at: sectorStart, count: sectorSize)
        let position = Int(offset % sector)
        guard bytes[position] != 0 else {
            throw WispError.notFound("\(device.name): no ISO 9660 directory record at offset \(offset)")
        }
        return try ISO9660Record.parse(bytes, at: position, sectorOffset: sectorStart, source: device.name)
    }

    func node(_ inode: UInt64) throws -> Node {
        let record = try Self.record(on: device, at: inode)
        let use = hierarchy == .rockRidge ? try ISO9660SystemUse.parse(record, skip: systemUseSkip, device: device) : nil
        if record.isSelf {
            guard record.isDirectory else {
                throw WispError.corrupt(device.name, "ISO 9660 directory", at: inode, "its \".\" record is not flagged as a directory")
            }
            return Node(record: record, use: use, directoryOffset: inode)
        }
        // Only directories' "." records and files' records are handed out as inodes; a
        // directory's entry in its parent is answered for the directory it names.
        if record.isDirectory || use?.childLink != nil {
            let target = use?.childLink.map { UInt64($0) * UInt64(Self.sectorSize) }
                ?? record.dataOffset(sectorSize: UInt64(Self.sectorSize))
            let dot = try Self.record(on: device, at: target)
            guard dot.isSelf, dot.isDirectory else {
                throw WispError.corrupt(device.name, "ISO 9660 directory", at: target, "does not start with a \".\" record")
            }
            let dotUse = hierarchy == .rockRidge ? try ISO9660SystemUse.parse(dot, skip: systemUseSkip, device: device) : nil
            return Node(record: dot, use: dotUse, directoryOffset: target)
        }
        return Node(record: record, use: use, directoryOffset: nil)
    }

    /// Every record of the directory whose extent starts at `offset`, "." first.
    func directoryRecords(at offset: UInt64) throws -> [ISO9660Record] {
        let dot = try Self.record(on: device, at: offset)
        guard offset % UInt64(Self.sectorSize) == 0, dot.isSelf, dot.isDirectory else {
            throw WispError.corrupt(device.name, "ISO 9660 directory", at: offset, "does not start with a \".\" record")
        }
        let size = UInt64(dot.dataLength)
        guard size <= Self.maxDirectoryBytes else {
            throw WispError.corrupt(device.name, "ISO 9660 directory", at: offset,
                                    "\(size) bytes, more than the \(Self.maxDirectoryBytes)-byte limit for one directory")
        }
        let sector = UInt64(Self.sectorSize)
        let rounded = max(sector, (size + sector - 1) / sector * sector)
        try device.checkRange(offset: offset, count: rounded, what: "ISO 9660 directory extent")
        return try ISO9660Record.records(in: device.read(at: offset, count: Int(rounded)), at: offset, source: device.name)
    }

    /// A subdirectory is entered only from the one directory that is its parent: for an
    /// ordinary one, its parent in the path table (or, without a sound path table, its
    /// ".." record); for a relocated one (reached through CL), the directory its PL names,
    /// and only if every record of its physical parent naming it is marked RE (relocated),
    /// so it cannot also be reached the ordinary way. Each directory then has exactly one
    /// way in, and no records can make a directory its own descendant.
    func checkSubdirectory(_ child: UInt64, of parent: UInt64, relocated: Bool, record: ISO9660Record) throws {
        let what = relocated ? "Rock Ridge CL entry" : "ISO 9660 directory record"
        let sector = UInt64(Self.sectorSize)
        guard child != parent else {
            throw WispError.corrupt(device.name, what, at: record.offset, "names the directory it is in (a loop)")
        }
        try device.checkRange(offset: child, count: sector, what: "ISO 9660 subdirectory named by the record at offset \(record.offset)")
        let records = try ISO9660Record.records(in: device.read(at: child, count: Self.sectorSize), at: child, source: device.name)
        guard records.count >= 2, records[0].isSelf, records[1].isParent else {
            throw WispError.corrupt(device.name, what, at: record.offset,
                                    "names a directory at offset \(child) that does not start with \".\" and \"..\" records")
        }
        let physicalParent: UInt64
        if let parents = pathTableParents {
            guard let listed = parents[records[0].extentLBA] else {
                throw WispError.corrupt(device.name, what, at: record.offset, "names a directory at offset \(child) that the path table does not list")
            }
            physicalParent = UInt64(listed) * sector
        } else {
            physicalParent = records[1].dataOffset(sectorSize: sector)
        }
        if !relocated {
            guard physicalParent == parent else {
                throw WispError.corrupt(device.name, what, at: record.offset,
                                        "names a directory at offset \(child) whose parent is at offset \(physicalParent), not this directory at \(parent) (a loop or cross-link)")
            }
            return
        }
        let use = try ISO9660SystemUse.parse(records[1], skip: systemUseSkip, device: device)
        guard let link = use.parentLink, UInt64(link) * sector == parent else {
            throw WispError.corrupt(device.name, what, at: record.offset,
                                    "names a directory at offset \(child) whose \"..\" has no PL entry naming this directory at \(parent)")
        }
        let naming = try directoryRecords(at: physicalParent).filter {
            !$0.isSelf && !$0.isParent && $0.isDirectory && $0.dataOffset(sectorSize: sector) == child
        }
        for entry in naming where !(try ISO9660SystemUse.parse(entry, skip: systemUseSkip, device: device).isRelocated) {
            throw WispError.corrupt(device.name, what, at: record.offset,
                                    "names a directory at offset \(child) that the record at offset \(entry.offset) also holds without an RE entry (two ways in)")
        }
        guard !naming.isEmpty else {
            throw WispError.corrupt(device.name, what, at: record.offset, "names a directory at offset \(child) that no relocated (RE) record holds")
        }
    }

    /// The extents of a file: one, or each part of a multi-extent file in order.
    func extents(of first: ISO9660Record) throws -> [Extent] {
        let sector = UInt64(Self.sectorSize)
        var parts = [first]
        var current = first
        while current.continuesInNextRecord {
            guard parts.count < Self.maxExtentsPerFile else {
                throw WispError.corrupt(device.name, "ISO 9660 multi-extent file", at: first.offset,
                                        "more than \(Self.maxExtentsPerFile) parts")
            }
            // The next part is the next record: later in this sector, or at the start of the next.
            var next = current.offset + UInt64(current.length)
            let atSectorEnd = next % sector == 0
            if try atSectorEnd || Self.peekLength(on: device, at: next) == 0 {
                next = (current.offset / sector + 1) * sector
            }
            let part = try Self.record(on: device, at: next)
            guard part.identifier == first.identifier, !part.isDirectory else {
                throw WispError.corrupt(device.name, "ISO 9660 multi-extent file", at: current.offset,
                                        "flagged to continue, but the next record (offset \(next)) is not a part of the same file")
            }
            parts.append(part)
            current = part
        }
        return parts.map { Extent(deviceOffset: $0.dataOffset(sectorSize: sector), length: UInt64($0.dataLength), recordOffset: $0.offset) }
    }

    static func peekLength(on device: any BlockDevice, at offset: UInt64) throws -> UInt8 {
        guard offset < device.size else { return 0 }
        return try device.read(at: offset, count: 1)[0]
    }

    /// The entry's name in the hierarchy being read.
    func name(of record: ISO9660Record, use: ISO9660SystemUse?) -> String {
        if let name = use?.name { return name }
        switch hierarchy {
        case .joliet: return ISO9660Names.withoutVersion(ISO9660Names.ucs2(record.identifier))
        case .rockRidge, .plain: return ISO9660Names.withoutVersion(String(decoding: record.identifier, as: UTF8.self))
        }
    }
}
