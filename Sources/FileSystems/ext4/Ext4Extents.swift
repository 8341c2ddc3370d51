import WispCore

/// A run of a file's logical blocks mapped to consecutive physical blocks.
/// `unwritten` runs (preallocated, never written) read as zeros.
struct Ext4Run: Sendable, Equatable {
    var logical: UInt64
    var physical: UInt64
    var length: UInt64
    var unwritten: Bool

    var logicalEnd: UInt64 { logical + length }
}

/// Reading an ext4 extent tree into a flat, sorted list of runs. Every node is checked
/// the way the kernel's `__ext4_ext_check` does (magic, entries ≤ max, max within the
/// node, depth exactly one less than the parent's, checksum tail), and a block met twice
/// is a cycle, so a hostile tree can neither loop nor blow up.
extension Ext4Reader {
    static let extentMagic: UInt16 = 0xF30A
    static let maxExtentDepth = 5
    /// More runs than this in one file is refused rather than held in memory.
    static let maxRunsPerFile = 1 << 22

    func extentRuns(_ inode: Ext4Inode) throws -> [Ext4Run] {
        var walk = ExtentWalk(inode: inode)
        let root = Array(inode.iBlock)
        let rootStructure = "ext4 inode \(inode.number) extent root"
        let rootOffset = inode.offset + UInt64(Ext4Inode.iBlockOffset)
        let r = ByteReader(root, source: device.name, structure: rootStructure, baseOffset: rootOffset)
        let depth = Int(try r.u16le(6))
        guard depth <= Self.maxExtentDepth else {
            throw r.error(at: 6, "extent tree depth \(depth) exceeds the limit of \(Self.maxExtentDepth)")
        }
        try walkExtentNode(r, depth: depth, maxEntries: (Ext4Inode.iBlockSize - 12) / 12, walk: &walk)
        return walk.runs
    }

    private struct ExtentWalk {
        let inode: Ext4Inode
        var runs: [Ext4Run] = []
        var visited: Set<UInt64> = []
        var nextLogical: UInt64 = 0
    }

    private func walkExtentNode(_ r: ByteReader, depth: Int, maxEntries: Int, walk: inout ExtentWalk) throws {
        let magic = try r.u16le(0)
        guard magic == Self.extentMagic else {
            throw r.error(at: 0, "extent header magic is 0x\(String(magic, radix: 16)), expected 0xf30a")
        }
        let entries = Int(try r.u16le(2))
        let max = Int(try r.u16le(4))
        let nodeDepth = Int(try r.u16le(6))
        guard nodeDepth == depth else {
            throw r.error(at: 6, "extent node depth is \(nodeDepth), expected \(depth)")
        }
        guard max > 0, max <= maxEntries else {
            throw r.error(at: 4, "extent node capacity \(max) is outside 1...\(maxEntries)")
        }
        guard entries <= max else {
            throw r.error(at: 2, "extent node holds \(entries) entries but has room for \(max)")
        }
        guard entries > 0 || depth == 0 else {
            throw r.error(at: 2, "extent index node at depth \(depth) is empty")
        }
        let sb = superblock
        if depth == 0 {
            for i in 0..<entries {
                let o = 12 + 12 * i
                let logical = UInt64(try r.u32le(o))
                var length = UInt64(try r.u16le(o + 4))
                let physical = UInt64(try r.u16le(o + 6)) << 32 | UInt64(try r.u32le(o + 8))
                var unwritten = false
                if length > 32768 {
                    length -= 32768
                    unwritten = true
                }
                guard length > 0 else { throw r.error(at: o + 4, "extent \(i) has length 0") }
                guard logical + length <= 1 << 32 else {
                    throw r.error(at: o, "extent \(i) covers logical blocks past 2^32")
                }
                guard logical >= walk.nextLogical else {
                    throw r.error(at: o, "extent \(i) starts at logical block \(logical), overlapping or out of order (next free logical block is \(walk.nextLogical))")
                }
                try checkPhysicalRange(physical, length, r, at: o + 6, what: "extent \(i)")
                guard walk.runs.count < Self.maxRunsPerFile else {
                    throw r.error(at: o, "inode \(walk.inode.number) has more than \(Self.maxRunsPerFile) extents")
                }
                // Merge physically adjacent runs so reads of a contiguous file are one I/O.
                if let last = walk.runs.last, last.logicalEnd == logical, last.physical + last.length == physical,
                   last.unwritten == unwritten {
                    walk.runs[walk.runs.count - 1].length += length
                } else {
                    walk.runs.append(Ext4Run(logical: logical, physical: physical, length: length, unwritten: unwritten))
                }
                walk.nextLogical = logical + length
            }
            return
        }
        var previousStart: UInt64?
        for i in 0..<entries {
            let o = 12 + 12 * i
            let start = UInt64(try r.u32le(o))
            if let previousStart, start <= previousStart {
                throw r.error(at: o, "extent index \(i) starts at logical block \(start), not after the previous index (\(previousStart))")
            }
            previousStart = start
            let child = UInt64(try r.u16le(o + 8)) << 32 | UInt64(try r.u32le(o + 4))
            try checkPhysicalRange(child, 1, r, at: o + 4, what: "extent index \(i)")
            guard walk.visited.insert(child).inserted else {
                throw r.error(at: o + 4, "extent index \(i) points at block \(child) a second time: the extent tree has a cycle")
            }
            let bytes = try readBlock(child)
            let node = ByteReader(bytes, source: device.name,
                                  structure: "ext4 inode \(walk.inode.number) extent block \(child)",
                                  baseOffset: child * UInt64(sb.blockSize))
            if sb.features.metadataChecksums {
                try verifyExtentTail(node, seed: walk.inode.checksumSeed)
            }
            try walkExtentNode(node, depth: depth - 1, maxEntries: (sb.blockSize - 12) / 12, walk: &walk)
        }
    }

    /// The `ext4_extent_tail` right after the node's `eh_max` slots: crc32c of everything
    /// before it, from the inode's seed.
    private func verifyExtentTail(_ node: ByteReader, seed: UInt32) throws {
        let max = Int(try node.u16le(4))
        let tail = 12 + 12 * max
        guard max <= (superblock.blockSize - 12) / 12, tail + 4 <= node.count else {
            throw node.error(at: 4, "extent node capacity \(max) leaves no room for its checksum")
        }
        let stored = try node.u32le(tail)
        let computed = Ext4Checksums.crc32c(seed, try node.slice(0, tail))
        guard stored == computed else {
            throw node.error(at: tail, "extent block checksum mismatch: stored \(Ext4Checksums.hex(stored)), computed \(Ext4Checksums.hex(computed))")
        }
    }

    /// Throws unless blocks `[start, start+count)` are ordinary blocks of this filesystem
    /// (not the boot block or primary superblock, not past the end).
    func checkPhysicalRange(_ start: UInt64, _ count: UInt64, _ r: ByteReader, at offset: Int, what: String) throws {
        let end = start.addingReportingOverflow(count)
        guard start > UInt64(superblock.firstDataBlock), !end.overflow, end.partialValue <= superblock.blocksCount else {
            throw r.error(at: offset, "\(what) points at blocks \(start)..<\(end.partialValue), outside the filesystem's data blocks \(superblock.firstDataBlock + 1)..<\(superblock.blocksCount)")
        }
    }
}
