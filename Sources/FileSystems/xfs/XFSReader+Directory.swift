import WispCore

extension XFSReader {
    /// Lists a directory in any of its forms. Shortform lives in the inode; block, leaf,
    /// node and btree forms all keep their entries in data blocks below the 32 GiB leaf
    /// offset, so reading every mapped data block there lists all of them without walking
    /// the hash index.
    public func list(directory number: UInt64) throws -> [DirectoryEntry] {
        if let cached = listingCache[number] { return cached }
        let node = try inode(number)
        guard node.type == .directory else {
            throw WispError.invalidArgument("\(source): XFS inode \(number) is not a directory")
        }
        let entries: [DirectoryEntry]
        switch node.format {
        case .local: entries = try shortformEntries(node)
        case .extents, .btree: entries = try dataBlockEntries(node)
        case .device:
            throw WispError.corrupt(source, "XFS directory inode \(number)", at: node.dataForkOffset, "device-format data fork")
        }
        // Huge directories are re-read rather than pinned in memory.
        if entries.count <= 100_000 { listingCache.insert(entries, for: number) }
        return entries
    }

    static func fileType(ftype: UInt8) -> FileType? {
        switch ftype {
        case 1: return .regular
        case 2: return .directory
        case 3: return .characterDevice
        case 4: return .blockDevice
        case 5: return .fifo
        case 6: return .socket
        case 7: return .symlink
        default: return nil
        }
    }

    func checkEntryInode(_ ino: UInt64, _ r: ByteReader, at offset: Int) throws {
        guard sb.inodeLocation(ino) != nil else {
            throw r.error(at: offset, "entry names inode \(ino), which lies outside the filesystem")
        }
    }

    /// xfs_dir2_sf_hdr + entries: count, i8count, parent; each entry namelen, 2-byte
    /// offset tag, name, optional ftype, 4- or 8-byte inode number.
    func shortformEntries(_ node: XFSInode) throws -> [DirectoryEntry] {
        let structure = "XFS shortform directory of inode \(node.number)"
        guard node.size >= 6, node.size <= UInt64(node.dataFork.count) else {
            throw WispError.corrupt(source, structure, at: node.dataForkOffset,
                                    "size \(node.size) does not fit the \(node.dataFork.count)-byte fork")
        }
        let r = ByteReader(Array(node.dataFork[0..<Int(node.size)]), source: source, structure: structure,
                           baseOffset: node.dataForkOffset)
        let count = Int(try r.u8(0))
        let wide = try r.u8(1) != 0
        let inodeWidth = wide ? 8 : 4
        var position = 2
        let parent = wide ? try r.u64be(position) : UInt64(try r.u32be(position))
        try checkEntryInode(parent, r, at: position)
        position += inodeWidth
        var entries: [DirectoryEntry] = []
        entries.reserveCapacity(count)
        for _ in 0..<count {
            let nameLength = Int(try r.u8(position))
            guard nameLength > 0 else { throw r.error(at: position, "entry with an empty name") }
            let name = try r.slice(position + 3, nameLength)
            position += 3 + nameLength
            var type: FileType?
            if sb.hasFtype {
                type = Self.fileType(ftype: try r.u8(position))
                position += 1
            }
            let ino = wide ? try r.u64be(position) : UInt64(try r.u32be(position))
            try checkEntryInode(ino, r, at: position)
            position += inodeWidth
            entries.append(DirectoryEntry(name: String(decoding: name, as: UTF8.self), inode: ino, type: type))
        }
        return entries
    }

    func dataBlockEntries(_ node: XFSInode) throws -> [DirectoryEntry] {
        let extents = try self.extents(of: node, fork: .data)
        let perDirBlock = UInt64(1) << UInt64(sb.dirBlockLog)
        let leafBlock = (UInt64(1) << 35) >> UInt64(sb.blockLog)
        var entries: [DirectoryEntry] = []
        var seenDirBlocks = Set<UInt64>()
        for e in extents where e.fileBlock < leafBlock {
            let end = min(e.fileBlock + e.blockCount, leafBlock)
            var dirBlock = e.fileBlock / perDirBlock
            while dirBlock * perDirBlock < end {
                defer { dirBlock += 1 }
                guard seenDirBlocks.insert(dirBlock).inserted else { continue }
                let (bytes, offset) = try readMapped(extents, first: dirBlock * perDirBlock, count: perDirBlock,
                                                     inode: node.number, what: "XFS directory block of inode \(node.number)")
                try parseDataBlock(bytes, at: offset, index: dirBlock, inode: node.number, into: &entries)
            }
        }
        return entries
    }

    /// One directory data block (XD2B/XDB3 single-block form or XD2D/XDD3 data block):
    /// entries and free spans from the header to the end (or to the leaf tail in block form).
    func parseDataBlock(_ bytes: [UInt8], at offset: UInt64, index: UInt64, inode: UInt64,
                        into entries: inout [DirectoryEntry]) throws {
        let structure = "XFS directory block \(index) of inode \(inode)"
        let r = ByteReader(bytes, source: source, structure: structure, baseOffset: offset)
        let magic = try r.u32be(0)
        let v5 = sb.isV5
        let blockMagic: UInt32 = v5 ? 0x5844_4233 : 0x5844_3242   // XDB3 / XD2B
        let dataMagic: UInt32 = v5 ? 0x5844_4433 : 0x5844_3244    // XDD3 / XD2D
        guard magic == dataMagic || (magic == blockMagic && index == 0) else {
            throw r.error(at: 0, "magic 0x\(String(magic, radix: 16)) is not \(v5 ? "XDD3 (or XDB3 for block 0)" : "XD2D (or XD2B for block 0)")")
        }
        if v5 {
            try verifyV5(bytes, at: offset, structure: structure, crcAt: 4, blknoAt: 8, uuidAt: 24,
                         ownerAt: 40, owner: inode)
        }
        let header = v5 ? 64 : 16
        var end = bytes.count
        if magic == blockMagic {
            // Block form: leaf entries and a (count, stale) tail sit at the end.
            let leafCount = Int(try r.u32be(bytes.count - 8))
            guard leafCount <= (bytes.count - header - 8) / 8 else {
                throw r.error(at: bytes.count - 8, "\(leafCount) leaf entries do not fit the block")
            }
            end = bytes.count - 8 - leafCount * 8
        }
        var position = header
        while position < end {
            if try r.u16be(position) == 0xFFFF {
                let length = Int(try r.u16be(position + 2))
                guard length >= 8, length % 8 == 0, length <= end - position else {
                    throw r.error(at: position, "free span of \(length) bytes (must be a positive multiple of 8 inside the block)")
                }
                position += length
                continue
            }
            let ino = try r.u64be(position)
            let nameLength = Int(try r.u8(position + 8))
            guard nameLength > 0 else { throw r.error(at: position + 8, "entry with an empty name") }
            let size = (8 + 1 + nameLength + (sb.hasFtype ? 1 : 0) + 2 + 7) & ~7
            guard size <= end - position else {
                throw r.error(at: position, "entry of \(size) bytes runs past the end of the entries")
            }
            let tag = Int(try r.u16be(position + size - 2))
            guard tag == position else {
                throw r.error(at: position + size - 2, "entry tag \(tag) does not match its position \(position)")
            }
            let name = try r.slice(position + 9, nameLength)
            let isDot = (nameLength == 1 && name.first == 0x2E) || (nameLength == 2 && name.elementsEqual([0x2E, 0x2E]))
            if !isDot {
                try checkEntryInode(ino, r, at: position)
                let type = sb.hasFtype ? Self.fileType(ftype: try r.u8(position + 9 + nameLength)) : nil
                entries.append(DirectoryEntry(name: String(decoding: name, as: UTF8.self), inode: ino, type: type))
            }
            position += size
        }
    }
}
