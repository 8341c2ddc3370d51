import WispCore

/// Reading ext4 directories linearly: every block's `ext4_dir_entry_2` records in
/// order. Hash-indexed (htree) directories are read the same way, skipping their index
/// blocks, which is what the index blocks are designed to allow (their fake entries have
/// inode 0 and span the block). With metadata_csum, leaf blocks end in a checksum tail
/// and index blocks in a `dx_tail`; both are verified.
extension Ext4Reader {
    /// Directories larger than this are refused rather than read (largedir allows more, but
    /// nothing real comes near it).
    static let maxDirectoryBytes: UInt64 = 1 << 32

    func directoryEntries(_ inode: Ext4Inode) throws -> [DirectoryEntry] {
        guard inode.type == .directory else {
            throw WispError.invalidArgument("\(device.name): ext4 inode \(inode.number) is not a directory")
        }
        guard !inode.isEncrypted else {
            throw WispError.unsupported(device.name, "ext4 directory inode \(inode.number) is encrypted (fscrypt); its names cannot be read")
        }
        if inode.hasInlineData { return try inlineDirectoryEntries(inode) }
        guard inode.size <= Self.maxDirectoryBytes else {
            throw WispError.corrupt(device.name, "ext4 inode \(inode.number)", at: inode.offset + 4,
                                    "directory size \(inode.size) exceeds the \(Self.maxDirectoryBytes)-byte limit")
        }
        let blockSize = UInt64(superblock.blockSize)
        let blockCount = (inode.size + blockSize - 1) / blockSize
        let runs = try fileRuns(inode)
        var entries: [DirectoryEntry] = []
        var logical: UInt64 = 0
        var runIndex = 0
        while logical < blockCount {
            while runIndex < runs.count && runs[runIndex].logicalEnd <= logical { runIndex += 1 }
            guard runIndex < runs.count, runs[runIndex].logical <= logical, !runs[runIndex].unwritten else {
                throw WispError.corrupt(device.name, "ext4 directory inode \(inode.number)",
                                        "block \(logical) of \(blockCount) is a hole; directories have none")
            }
            let run = runs[runIndex]
            // Read up to 1 MiB of consecutive directory blocks in one I/O.
            let count = min(run.logicalEnd, blockCount, logical + max(1, (1 << 20) / blockSize)) - logical
            let physical = run.physical + (logical - run.logical)
            let bytes = try device.read(at: physical * blockSize, count: Int(count * blockSize))
            for i in 0..<Int(count) {
                let start = i * Int(blockSize)
                try parseDirectoryBlock(Array(bytes[start..<(start + Int(blockSize))]), inode: inode,
                                        logical: logical + UInt64(i), physical: physical + UInt64(i),
                                        into: &entries)
            }
            logical += count
        }
        return entries
    }

    private func parseDirectoryBlock(_ block: [UInt8], inode: Ext4Inode, logical: UInt64, physical: UInt64,
                                     into entries: inout [DirectoryEntry]) throws {
        let blockSize = superblock.blockSize
        let r = ByteReader(block, source: device.name,
                           structure: "ext4 directory inode \(inode.number) block \(logical) (block \(physical))",
                           baseOffset: physical * UInt64(blockSize))
        let firstInode = try r.u32le(0)
        let firstLength = try recordLength(try r.u16le(4), r, at: 4)
        let isIndexBlock = inode.isHashIndexed
            && (logical == 0 || (firstInode == 0 && firstLength == blockSize))
        if isIndexBlock {
            // An htree root holds only "." and ".."; an interior node holds no entries.
            if superblock.features.metadataChecksums {
                try verifyIndexTail(r, isRoot: logical == 0, seed: inode.checksumSeed)
            }
            return
        }
        var end = blockSize
        if superblock.features.metadataChecksums {
            try verifyLeafTail(r, seed: inode.checksumSeed)
            end -= 12
        }
        try parseEntries(r, from: 0, to: end, into: &entries)
    }

    /// Decodes `ext4_dir_entry_2` records filling `[start, end)` of `r`.
    func parseEntries(_ r: ByteReader, from start: Int, to end: Int, into entries: inout [DirectoryEntry]) throws {
        let hasFileType = superblock.features.hasIncompatible(Ext4Features.filetype)
        var o = start
        while o < end {
            guard end - o >= 8 else { throw r.error(at: o, "directory entry header needs 8 bytes, \(end - o) remain") }
            let number = try r.u32le(o)
            let length = try recordLength(try r.u16le(o + 4), r, at: o + 4)
            let nameLength = hasFileType ? Int(try r.u8(o + 6)) : Int(try r.u16le(o + 6))
            guard length >= 12, length % 4 == 0 else {
                throw r.error(at: o + 4, "directory entry length \(length) is not a multiple of 4 of at least 12")
            }
            guard length <= end - o else {
                throw r.error(at: o + 4, "directory entry length \(length) runs past the end of the block (\(end - o) bytes remain)")
            }
            guard 8 + nameLength <= length else {
                throw r.error(at: o + 6, "directory entry name length \(nameLength) does not fit in its \(length)-byte record")
            }
            if number != 0 {
                guard nameLength > 0 else { throw r.error(at: o + 6, "directory entry for inode \(number) has an empty name") }
                guard number <= superblock.inodesCount else {
                    throw r.error(at: o, "directory entry names inode \(number), past the last inode \(superblock.inodesCount)")
                }
                let nameBytes = try r.slice(o + 8, nameLength)
                let isDot = nameBytes.elementsEqual([0x2E]) || nameBytes.elementsEqual([0x2E, 0x2E])
                if !isDot {
                    let type: FileType? = hasFileType ? Self.fileType(code: try r.u8(o + 7)) : nil
                    entries.append(DirectoryEntry(name: String(decoding: nameBytes, as: UTF8.self),
                                                  inode: UInt64(number), type: type))
                }
            }
            o += length
        }
    }

    /// rec_len as stored: verbatim below 64 KiB blocks; with 64 KiB blocks 0 and 65535
    /// mean a whole block and the low two bits carry bits 16-17.
    private func recordLength(_ stored: UInt16, _ r: ByteReader, at offset: Int) throws -> Int {
        let blockSize = superblock.blockSize
        if blockSize < 65536 {
            guard stored != 0 else { throw r.error(at: offset, "directory entry length is 0") }
            return Int(stored)
        }
        if stored == 0 || stored == 0xFFFF { return blockSize }
        return Int(stored & 0xFFFC) | Int(stored & 3) << 16
    }

    static func fileType(code: UInt8) -> FileType? {
        switch code {
        case 1: .regular
        case 2: .directory
        case 3: .characterDevice
        case 4: .blockDevice
        case 5: .fifo
        case 6: .socket
        case 7: .symlink
        default: nil
        }
    }

    /// `ext4_dir_entry_tail`: a fake entry (inode 0, rec_len 12, name_len 0, type 0xDE)
    /// filling the last 12 bytes, with crc32c of the block before it from the inode seed.
    private func verifyLeafTail(_ r: ByteReader, seed: UInt32) throws {
        let t = r.count - 12
        guard try r.u32le(t) == 0, try r.u16le(t + 4) == 12, try r.u8(t + 6) == 0, try r.u8(t + 7) == 0xDE else {
            throw r.error(at: t, "directory block has no checksum tail (metadata_csum requires one)")
        }
        let stored = try r.u32le(t + 8)
        let computed = Ext4Checksums.crc32c(seed, try r.slice(0, t))
        guard stored == computed else {
            throw r.error(at: t + 8, "directory block checksum mismatch: stored \(Ext4Checksums.hex(stored)), computed \(Ext4Checksums.hex(computed))")
        }
    }

    /// The `dx_tail` after an htree node's `limit` slots: crc32c over the header and the
    /// `count` used slots, then the tail's reserved word and a zeroed checksum.
    private func verifyIndexTail(_ r: ByteReader, isRoot: Bool, seed: UInt32) throws {
        let blockSize = superblock.blockSize
        var countOffset = 8
        if isRoot {
            let dotLength = try r.u16le(4)
            let dotDotLength = try recordLength(try r.u16le(16), r, at: 16)
            guard dotLength == 12, dotDotLength == blockSize - 12, try r.u32le(24) == 0, try r.u8(29) == 8 else {
                throw r.error(at: 0, "htree root block is malformed (expected \".\" of 12 bytes, \"..\" spanning the block, and an 8-byte dx_root_info)")
            }
            countOffset = 32
        }
        let limit = Int(try r.u16le(countOffset))
        let count = Int(try r.u16le(countOffset + 2))
        let tail = countOffset + 8 * limit
        guard count <= limit, tail + 8 <= blockSize else {
            throw r.error(at: countOffset, "htree node count \(count) / limit \(limit) leave no room for the checksum tail")
        }
        var crc = Ext4Checksums.crc32c(seed, try r.slice(0, countOffset + 8 * count))
        crc = Ext4Checksums.crc32c(crc, try r.slice(tail, 4))
        crc = Ext4Checksums.crc32c(crc, [0, 0, 0, 0])
        let stored = try r.u32le(tail + 4)
        guard stored == crc else {
            throw r.error(at: tail + 4, "htree block checksum mismatch: stored \(Ext4Checksums.hex(stored)), computed \(Ext4Checksums.hex(crc))")
        }
    }

    /// An inline directory: i_block starts with the parent's inode number, then 56 bytes of
    /// entries; more entries may continue in the `system.data` attribute.
    private func inlineDirectoryEntries(_ inode: Ext4Inode) throws -> [DirectoryEntry] {
        let r = ByteReader(Array(inode.iBlock), source: device.name,
                           structure: "ext4 inode \(inode.number) inline directory",
                           baseOffset: inode.offset + UInt64(Ext4Inode.iBlockOffset))
        let parent = try r.u32le(0)
        guard parent != 0, parent <= superblock.inodesCount else {
            throw r.error(at: 0, "inline directory's parent inode \(parent) does not exist")
        }
        var entries: [DirectoryEntry] = []
        try parseEntries(r, from: 4, to: Ext4Inode.iBlockSize, into: &entries)
        if let more = try inlineDataAttribute(inode), !more.isEmpty {
            let extra = ByteReader(more, source: device.name,
                                   structure: "ext4 inode \(inode.number) inline directory (system.data)",
                                   baseOffset: inode.offset)
            try parseEntries(extra, from: 0, to: more.count, into: &entries)
        }
        return entries
    }
}
