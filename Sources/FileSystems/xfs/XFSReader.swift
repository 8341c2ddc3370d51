import WispCore

/// Reads an XFS filesystem (v5 with CRC-verified metadata; v4 without CRCs) from any
/// `BlockDevice`: inodes, data forks in local/extents/btree format, directories in every
/// form, inline and remote symlinks, and xattrs. Read-only; never writes to the device.
public final class XFSReader: FileSystem {
    public let device: any BlockDevice
    let sb: XFSSuperblock
    let source: String

    public var typeName: String { "xfs" }
    public var label: String? { sb.label.isEmpty ? nil : sb.label }
    /// The user-visible UUID (sb_uuid), as blkid and fstab's UUID= use it.
    public var uuid: String? { sb.uuidString }
    public var rootInode: UInt64 { sb.rootInode }
    /// Things worth telling the user that do not stop reading (a log that may need
    /// recovery).
    public var warnings: [String] { sb.warnings }

    let inodeCache = SharedLRUCache<UInt64, XFSInode>(capacity: 2048)
    let extentCache = SharedLRUCache<XFSExtentKey, [XFSExtent]>(capacity: 256)
    let listingCache = SharedLRUCache<UInt64, [DirectoryEntry]>(capacity: 64)
    let checkedAGs = LockedValue<Set<UInt32>>([])

    /// More extents than this in one fork is treated as corruption rather than allocated.
    static let maxExtents: UInt64 = 1 << 22
    /// XFS_SYMLINK_MAXLEN.
    static let maxSymlinkLength: UInt64 = 1024

    public init(device: any BlockDevice) throws {
        self.device = device
        source = device.name
        guard device.size >= 512 else {
            throw WispError.corrupt(device.name, "XFS superblock", at: 0, "the device is smaller than one sector")
        }
        // Read the largest possible sector (32 KiB) or what the device has, then trust
        // sb_sectsize only after it has been validated.
        let head = try device.read(at: 0, count: Int(min(device.size, 32768)))
        sb = try XFSSuperblock.parse(head, source: device.name, deviceSize: device.size)
        try checkAllocationGroup(0)
    }

    // MARK: FileSystem

    public func stat(inode: UInt64) throws -> FileStat {
        try self.inode(inode).stat()
    }

    public func readlink(inode number: UInt64) throws -> String {
        let node = try inode(number)
        guard node.type == .symlink else {
            throw WispError.invalidArgument("\(source): XFS inode \(number) is not a symbolic link")
        }
        guard node.size > 0, node.size <= Self.maxSymlinkLength else {
            throw WispError.corrupt(source, "XFS symlink inode \(number)", at: node.dataForkOffset,
                                    "target length \(node.size) is outside 1...\(Self.maxSymlinkLength)")
        }
        let length = Int(node.size)
        switch node.format {
        case .local:
            guard length <= node.dataFork.count else {
                throw WispError.corrupt(source, "XFS symlink inode \(number)", at: node.dataForkOffset,
                                        "inline target of \(length) bytes exceeds the \(node.dataFork.count)-byte fork")
            }
            return String(decoding: node.dataFork[0..<length], as: UTF8.self)
        case .extents, .btree:
            return String(decoding: try remoteSymlink(node, length: length), as: UTF8.self)
        case .device:
            throw WispError.corrupt(source, "XFS symlink inode \(number)", at: node.dataForkOffset, "device-format data fork")
        }
    }

    public func read(inode number: UInt64, offset: UInt64, count: Int) throws -> [UInt8] {
        let node = try inode(number)
        guard node.type == .regular else {
            throw WispError.invalidArgument("\(source): XFS inode \(number) is not a regular file")
        }
        guard node.size <= sb.maximumFileSize else {
            throw WispError.corrupt(source, "XFS inode \(number)", at: sb.inodeLocation(number).map { $0 &+ 56 },
                                    "size \(node.size) exceeds the largest file XFS can hold (\(sb.maximumFileSize) bytes: 2^54 blocks of \(sb.blockSize) bytes, file offsets signed 64-bit)")
        }
        guard count > 0, offset < node.size else { return [] }
        let length = Int(min(UInt64(count), node.size - offset))
        var output = [UInt8](repeating: 0, count: length)
        switch node.format {
        case .local:
            // Linux never writes inline regular files, but the format allows them.
            guard node.size <= UInt64(node.dataFork.count) else {
                throw WispError.corrupt(source, "XFS inode \(number)", at: node.dataForkOffset,
                                        "inline data of \(node.size) bytes exceeds the \(node.dataFork.count)-byte fork")
            }
            let start = Int(offset)
            output.replaceSubrange(0..<length, with: node.dataFork[start..<(start + length)])
        case .extents, .btree:
            if node.flags & XFSInode.flagRealtime != 0 {
                throw WispError.unsupported(source, "XFS inode \(number) lives on the realtime device")
            }
            let extents = try self.extents(of: node, fork: .data)
            try output.withUnsafeMutableBytes { buffer in
                try fill(buffer, from: extents, fileOffset: offset, inode: number)
            }
        case .device:
            throw WispError.corrupt(source, "XFS inode \(number)", at: node.dataForkOffset, "regular file with a device-format data fork")
        }
        return output
    }

    // MARK: Inodes and blocks

    func inode(_ number: UInt64) throws -> XFSInode {
        if let cached = inodeCache[number] { return cached }
        guard let offset = sb.inodeLocation(number) else {
            throw WispError.corrupt(source, "XFS inode number", "inode \(number) lies outside the filesystem")
        }
        try checkAllocationGroup(sb.agNumber(ofInode: number))
        let bytes = try device.read(at: offset, count: Int(sb.inodeSize))
        let node = try XFSInode.parse(bytes, number: number, at: offset, superblock: sb, source: source)
        inodeCache.insert(node, for: number)
        return node
    }

    /// Reads `count` fs blocks starting at fs block number `fsBlock`.
    func readBlocks(_ fsBlock: UInt64, count: UInt64, what: String) throws -> (bytes: [UInt8], offset: UInt64) {
        guard count <= 1 << 16, let offset = sb.byteOffset(fsBlock: fsBlock, count: count) else {
            throw WispError.corrupt(source, what, "block \(fsBlock) (+\(count)) lies outside the filesystem")
        }
        return (try device.read(at: offset, count: Int(count << UInt64(sb.blockLog))), offset)
    }

    /// Checks the v5 self-describing header shared by metadata blocks: CRC, block number
    /// (in 512-byte units), owning inode and filesystem UUID.
    func verifyV5(_ bytes: [UInt8], at offset: UInt64, structure: String, crcAt: Int, blknoAt: Int,
                  uuidAt: Int, ownerAt: Int?, owner: UInt64) throws {
        let r = ByteReader(bytes, source: source, structure: structure, baseOffset: offset)
        let stored = try r.u32le(crcAt)
        var copy = bytes
        copy.putLE32(0, at: crcAt)
        let computed = CRC32C.checksum(copy)
        guard stored == computed else {
            throw r.error(at: crcAt, "CRC mismatch (stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16)))")
        }
        let blkno = try r.u64be(blknoAt)
        guard blkno == offset >> 9 else {
            throw r.error(at: blknoAt, "block records its address as sector \(blkno), expected \(offset >> 9)")
        }
        guard try r.array(uuidAt, 16) == sb.metadataUUID else {
            throw r.error(at: uuidAt, "block belongs to another filesystem (UUID mismatch)")
        }
        if let ownerAt {
            let recorded = try r.u64be(ownerAt)
            guard recorded == owner else {
                throw r.error(at: ownerAt, "block is owned by inode \(recorded), expected \(owner)")
            }
        }
    }

    /// Verifies an allocation group's AGF and AGI headers once, the first time anything in
    /// that group is read.
    func checkAllocationGroup(_ agno: UInt32) throws {
        if checkedAGs.withLock({ $0.contains(agno) }) { return }
        let agStart = UInt64(agno) * UInt64(sb.agBlocks) << UInt64(sb.blockLog)
        let sector = Int(sb.sectorSize)
        let expectedLength = agno == sb.agCount - 1
            ? UInt32(sb.dataBlocks - UInt64(sb.agCount - 1) * UInt64(sb.agBlocks)) : sb.agBlocks
        for (index, name, magic, uuidAt, crcAt) in [(1, "AGF", UInt32(0x5841_4746), 64, 216),
                                                    (2, "AGI", UInt32(0x5841_4749), 296, 312)] {
            let offset = agStart + UInt64(index * sector)
            let bytes = try device.read(at: offset, count: sector)
            let r = ByteReader(bytes, source: source, structure: "XFS \(name) of AG \(agno)", baseOffset: offset)
            guard try r.u32be(0) == magic else { throw r.error(at: 0, "magic is not X\(name)") }
            guard try r.u32be(4) == 1 else { throw r.error(at: 4, "version \(try r.u32be(4)) (expected 1)") }
            guard try r.u32be(8) == agno else { throw r.error(at: 8, "sequence number \(try r.u32be(8)) (expected \(agno))") }
            guard try r.u32be(12) == expectedLength else {
                throw r.error(at: 12, "length \(try r.u32be(12)) blocks (expected \(expectedLength))")
            }
            if sb.isV5 {
                let stored = try r.u32le(crcAt)
                var copy = bytes
                copy.putLE32(0, at: crcAt)
                guard CRC32C.checksum(copy) == stored else { throw r.error(at: crcAt, "CRC mismatch") }
                guard try r.array(uuidAt, 16) == sb.metadataUUID else {
                    throw r.error(at: uuidAt, "header belongs to another filesystem (UUID mismatch)")
                }
            }
        }
        _ = checkedAGs.withLock { $0.insert(agno) }
    }

    /// Copies file bytes at `fileOffset` into `buffer` from the extent map: holes and
    /// unwritten extents stay zero, each written extent is read in one device call.
    func fill(_ buffer: UnsafeMutableRawBufferPointer, from extents: [XFSExtent], fileOffset: UInt64,
              inode: UInt64) throws {
        let blockLog = UInt64(sb.blockLog)
        let end = fileOffset + UInt64(buffer.count)
        var index = firstExtent(in: extents, endingAfter: fileOffset >> blockLog)
        while index < extents.count {
            let e = extents[index]
            index += 1
            let eStart = e.fileBlock << blockLog
            if eStart >= end { break }
            let eEnd = (e.fileBlock + e.blockCount) << blockLog
            let from = max(eStart, fileOffset), to = min(eEnd, end)
            guard from < to, !e.unwritten else { continue }
            guard let base = sb.byteOffset(fsBlock: e.startBlock, count: e.blockCount) else {
                throw WispError.corrupt(source, "XFS extent of inode \(inode)", "blocks \(e.startBlock)+\(e.blockCount) lie outside the filesystem")
            }
            let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[Int(from - fileOffset)..<Int(to - fileOffset)])
            try device.read(into: slice, at: base + (from - eStart))
        }
    }

    /// Index of the first extent whose end lies after `block` (extents are sorted).
    func firstExtent(in extents: [XFSExtent], endingAfter block: UInt64) -> Int {
        var low = 0, high = extents.count
        while low < high {
            let mid = (low + high) / 2
            if extents[mid].fileBlock + extents[mid].blockCount <= block { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Reads logical blocks `[first, first+count)` of a fork; every block must be mapped
    /// and written (directory, attribute and symlink blocks never have holes).
    func readMapped(_ extents: [XFSExtent], first: UInt64, count: UInt64, inode: UInt64, what: String) throws -> (bytes: [UInt8], offset: UInt64) {
        guard count >= 1, count <= 1 << 16 else {
            throw WispError.corrupt(source, what, "\(count) blocks requested")
        }
        var output = [UInt8](repeating: 0, count: Int(count << UInt64(sb.blockLog)))
        var firstOffset: UInt64?
        var block = first
        var index = firstExtent(in: extents, endingAfter: first)
        try output.withUnsafeMutableBytes { buffer in
            while block < first + count {
                guard index < extents.count, extents[index].fileBlock <= block, !extents[index].unwritten else {
                    throw WispError.corrupt(source, what, "logical block \(block) of inode \(inode) is not mapped")
                }
                let e = extents[index]
                let run = min(e.fileBlock + e.blockCount, first + count) - block
                let physical = e.startBlock + (block - e.fileBlock)
                guard let at = sb.byteOffset(fsBlock: physical, count: run) else {
                    throw WispError.corrupt(source, what, "block \(physical)+\(run) lies outside the filesystem")
                }
                if firstOffset == nil { firstOffset = at }
                let start = Int((block - first) << UInt64(sb.blockLog))
                let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[start..<(start + Int(run << UInt64(sb.blockLog)))])
                try device.read(into: slice, at: at)
                block += run
                index += 1
            }
        }
        return (output, firstOffset ?? 0)
    }

    func remoteSymlink(_ node: XFSInode, length: Int) throws -> [UInt8] {
        let extents = try self.extents(of: node, fork: .data)
        var target: [UInt8] = []
        for e in extents {
            guard e.blockCount <= 8 else {
                throw WispError.corrupt(source, "XFS symlink inode \(node.number)", "extent of \(e.blockCount) blocks for a target of \(length) bytes")
            }
            let (bytes, offset) = try readMapped([e], first: e.fileBlock, count: e.blockCount, inode: node.number,
                                                 what: "XFS symlink block of inode \(node.number)")
            if sb.isV5 {
                let structure = "XFS remote symlink block of inode \(node.number)"
                let r = ByteReader(bytes, source: source, structure: structure, baseOffset: offset)
                guard try r.u32be(0) == 0x5853_4C4D else { throw r.error(at: 0, "magic is not XSLM") }
                try verifyV5(bytes, at: offset, structure: structure, crcAt: 12, blknoAt: 40, uuidAt: 16,
                             ownerAt: 32, owner: node.number)
                let chunkOffset = Int(try r.u32be(4)), chunkBytes = Int(try r.u32be(8))
                guard chunkOffset == target.count, chunkBytes <= bytes.count - 56, chunkBytes <= length - target.count else {
                    throw r.error(at: 4, "chunk of \(chunkBytes) bytes at \(chunkOffset) does not continue a \(length)-byte target")
                }
                target += bytes[56..<(56 + chunkBytes)]
            } else {
                target += bytes.prefix(length - target.count)
            }
            if target.count >= length { break }
        }
        guard target.count == length else {
            throw WispError.corrupt(source, "XFS symlink inode \(node.number)", "only \(target.count) of \(length) target bytes are mapped")
        }
        return target
    }
}
