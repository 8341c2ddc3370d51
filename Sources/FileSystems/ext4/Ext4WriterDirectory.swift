import WispCore

/// One name in a directory being written.
struct Ext4WriterDirectoryEntry: Sendable {
    var name: [UInt8]
    var inode: UInt32
    /// ext4_dir_entry_2 file_type: 1 regular ... 7 symlink.
    var fileType: UInt8

    var recordLength: Int { Self.recordLength(nameLength: name.count) }

    static func recordLength(nameLength: Int) -> Int { (8 + nameLength + 3) & ~3 }
}

/// Directory blocks with metadata_csum: a directory whose entries fit one block is a
/// plain linear block; a larger one is hash-indexed (htree) so lookups stay fast. Leaf
/// blocks end in the 12-byte checksum tail; index blocks in a `dx_tail`.
struct Ext4WriterDirectoryBlocks {
    static let blockSize = Ext4WriterGeometry.blockSize
    static let tailSize = 12
    static let directoryFileType: UInt8 = 2
    /// Entries an htree root holds (after ".", ".." and dx_root_info, before dx_tail).
    static let rootLimit = (blockSize - 32 - 8) / 8
    /// Entries an interior htree node holds.
    static let nodeLimit = (blockSize - 8 - 8) / 8
    /// dx_root_info.indirect_levels allows one level of interior nodes without large_dir.
    static let maxLeafBlocks = rootLimit * nodeLimit

    let blocks: [[UInt8]]
    let indexed: Bool

    /// `entries` excludes "." and ".."; `minimumBlocks` pads a linear directory with empty
    /// blocks (lost+found gets four, as mke2fs makes it, so e2fsck can use it without
    /// allocating). `checksumSeed` is the directory inode's.
    init(entries: [Ext4WriterDirectoryEntry], selfInode: UInt32, parentInode: UInt32, minimumBlocks: Int,
         hash: Ext4WriterDirectoryHash, checksumSeed: UInt32, path: String) throws {
        let dot = Ext4WriterDirectoryEntry(name: [0x2E], inode: selfInode, fileType: Self.directoryFileType)
        let dotDot = Ext4WriterDirectoryEntry(name: [0x2E, 0x2E], inode: parentInode, fileType: Self.directoryFileType)
        let linearBytes = entries.reduce(24) { $0 + $1.recordLength }
        if linearBytes <= Self.blockSize - Self.tailSize {
            var blocks = [Self.leaf([dot, dotDot] + entries, seed: checksumSeed)]
            while blocks.count < minimumBlocks { blocks.append(Self.leaf([], seed: checksumSeed)) }
            self.blocks = blocks
            indexed = false
            return
        }
        blocks = try Self.htree(entries, dot: dot, dotDot: dotDot, hash: hash, seed: checksumSeed, path: path)
        indexed = true
    }

    /// A leaf block holding `entries` in order, the last one's record stretched to the
    /// tail; an empty block is one unused record spanning it.
    static func leaf(_ entries: [Ext4WriterDirectoryEntry], seed: UInt32) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: blockSize)
        let end = blockSize - tailSize
        if entries.isEmpty {
            block.putLE16(UInt16(end), at: 4)
        }
        var offset = 0
        for (i, entry) in entries.enumerated() {
            let length = i == entries.count - 1 ? end - offset : entry.recordLength
            block.putLE32(entry.inode, at: offset)
            block.putLE16(UInt16(length), at: offset + 4)
            block[offset + 6] = UInt8(entry.name.count)
            block[offset + 7] = entry.fileType
            block.replaceSubrange((offset + 8)..<(offset + 8 + entry.name.count), with: entry.name)
            offset += length
        }
        // ext4_dir_entry_tail: inode 0, rec_len 12, name_len 0, file_type 0xDE, crc32c.
        block.putLE16(UInt16(tailSize), at: end + 4)
        block[end + 7] = 0xDE
        block.putLE32(Ext4Checksums.crc32c(seed, block[0..<end]), at: end + 8)
        return block
    }

    private struct Leaf {
        var entries: [Ext4WriterDirectoryEntry] = []
        var bytes = 0
        var firstHash: UInt32 = 0
        /// The first hash equals the previous leaf's last: the index marks it with bit 0
        /// so a lookup goes on into this block.
        var continuation = false
    }

    private static func htree(_ entries: [Ext4WriterDirectoryEntry], dot: Ext4WriterDirectoryEntry,
                              dotDot: Ext4WriterDirectoryEntry, hash: Ext4WriterDirectoryHash, seed: UInt32,
                              path: String) throws -> [[UInt8]] {
        let hashed = entries.map { (hash: hash.hash($0.name), entry: $0) }.sorted { a, b in
            if a.hash.major != b.hash.major { return a.hash.major < b.hash.major }
            if a.hash.minor != b.hash.minor { return a.hash.minor < b.hash.minor }
            return a.entry.name.lexicographicallyPrecedes(b.entry.name)
        }
        var leaves: [Leaf] = []
        var current = Leaf()
        var lastHash: UInt32?
        for item in hashed {
            let size = item.entry.recordLength
            if !current.entries.isEmpty && current.bytes + size > blockSize - tailSize {
                leaves.append(current)
                current = Leaf()
            }
            if current.entries.isEmpty {
                current.firstHash = item.hash.major
                current.continuation = !leaves.isEmpty && lastHash == item.hash.major
            }
            current.entries.append(item.entry)
            current.bytes += size
            lastHash = item.hash.major
        }
        if !current.entries.isEmpty { leaves.append(current) }
        guard leaves.count <= maxLeafBlocks else {
            throw WispError.invalidArgument("\(path): a directory of \(entries.count) entries needs \(leaves.count) blocks of names, more than an ext4 htree without large_dir indexes (\(maxLeafBlocks))")
        }
        func indexHash(_ leaf: Leaf) -> UInt32 { leaf.firstHash | (leaf.continuation ? 1 : 0) }

        var blocks: [[UInt8]] = []
        if leaves.count <= rootLimit {
            let targets = leaves.enumerated().map { (hash: indexHash($0.element), block: UInt32(1 + $0.offset)) }
            blocks.append(root(dot: dot, dotDot: dotDot, levels: 0, entries: targets, hashVersion: hash.version, seed: seed))
        } else {
            let nodeCount = (leaves.count + nodeLimit - 1) / nodeLimit
            let firstLeafBlock = 1 + nodeCount
            var rootTargets: [(hash: UInt32, block: UInt32)] = []
            var nodes: [[UInt8]] = []
            for n in 0..<nodeCount {
                let range = (n * nodeLimit)..<min((n + 1) * nodeLimit, leaves.count)
                let targets = range.map { (hash: indexHash(leaves[$0]), block: UInt32(firstLeafBlock + $0)) }
                nodes.append(node(entries: targets, seed: seed))
                rootTargets.append((indexHash(leaves[range.lowerBound]), UInt32(1 + n)))
            }
            blocks.append(root(dot: dot, dotDot: dotDot, levels: 1, entries: rootTargets, hashVersion: hash.version, seed: seed))
            blocks += nodes
        }
        for leaf in leaves { blocks.append(Self.leaf(leaf.entries, seed: seed)) }
        return blocks
    }

    private static func root(dot: Ext4WriterDirectoryEntry, dotDot: Ext4WriterDirectoryEntry, levels: UInt8,
                             entries: [(hash: UInt32, block: UInt32)], hashVersion: Ext4HashVersion, seed: UInt32) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: blockSize)
        block.putLE32(dot.inode, at: 0)
        block.putLE16(12, at: 4)
        block[6] = 1
        block[7] = directoryFileType
        block[8] = 0x2E
        block.putLE32(dotDot.inode, at: 12)
        block.putLE16(UInt16(blockSize - 12), at: 16)
        block[18] = 2
        block[19] = directoryFileType
        block[20] = 0x2E
        block[21] = 0x2E
        block[28] = hashVersion.code
        block[29] = 8
        block[30] = levels
        fillIndex(&block, countOffset: 32, limit: rootLimit, entries: entries, seed: seed)
        return block
    }

    private static func node(entries: [(hash: UInt32, block: UInt32)], seed: UInt32) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: blockSize)
        // A fake entry spanning the block, so linear readers skip it.
        block.putLE16(UInt16(blockSize), at: 4)
        fillIndex(&block, countOffset: 8, limit: nodeLimit, entries: entries, seed: seed)
        return block
    }

    /// dx_countlimit, the entries (the first one's hash slot holds the count and limit),
    /// and the dx_tail checksum over the used part.
    private static func fillIndex(_ block: inout [UInt8], countOffset: Int, limit: Int,
                                  entries: [(hash: UInt32, block: UInt32)], seed: UInt32) {
        block.putLE16(UInt16(limit), at: countOffset)
        block.putLE16(UInt16(entries.count), at: countOffset + 2)
        for (i, entry) in entries.enumerated() {
            if i > 0 { block.putLE32(entry.hash, at: countOffset + 8 * i) }
            block.putLE32(entry.block, at: countOffset + 8 * i + 4)
        }
        let tail = countOffset + 8 * limit
        var crc = Ext4Checksums.crc32c(seed, block[0..<(countOffset + 8 * entries.count)])
        crc = Ext4Checksums.crc32c(crc, block[tail..<(tail + 4)])
        crc = Ext4Checksums.crc32c(crc, [0, 0, 0, 0])
        block.putLE32(crc, at: tail + 4)
    }
}
