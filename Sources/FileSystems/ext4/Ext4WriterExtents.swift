import WispCore

/// One initialised extent: `length` (1...32768) logical blocks from `logical` stored
/// from `physical`.
struct Ext4WriterExtent: Sendable, Equatable {
    var logical: UInt32
    var physical: UInt64
    var length: UInt32
}

/// An extent tree built bottom-up from a file's complete, sorted extent list: up to four
/// extents live in i_block; more go into full leaf blocks of 340, indexed by as many
/// levels of index blocks as it takes until four entries remain for the root.
struct Ext4WriterExtentTree {
    static let magic: UInt16 = 0xF30A
    static let maxExtentLength: UInt32 = 32768
    static let rootCapacity = (Ext4Inode.iBlockSize - 12) / 12
    static let nodeCapacity = (Ext4WriterGeometry.blockSize - 12 - 4) / 12
    /// Largest logical block count a file may span (ee_block is 32 bits).
    static let maxLogicalBlocks: UInt64 = 1 << 32

    let iBlock: [UInt8]
    let nodes: [(block: UInt64, bytes: [UInt8])]
    let depth: Int

    /// Blocks a tree over `extentCount` extents needs beside the root.
    static func nodeBlocks(forExtents extentCount: Int) -> Int {
        guard extentCount > rootCapacity else { return 0 }
        var total = 0
        var level = extentCount
        repeat {
            level = (level + nodeCapacity - 1) / nodeCapacity
            total += level
        } while level > rootCapacity
        return total
    }

    /// `nodeBlocks` holds exactly `nodeBlocks(forExtents: extents.count)` block numbers.
    init(extents: [Ext4WriterExtent], nodeBlocks: [UInt64], checksumSeed: UInt32) {
        var entries: [(first: UInt32, bytes: [UInt8])] = extents.map { extent in
            var e = [UInt8](repeating: 0, count: 12)
            e.putLE32(extent.logical, at: 0)
            e.putLE16(UInt16(extent.length), at: 4)
            e.putLE16(UInt16(truncatingIfNeeded: extent.physical >> 32), at: 6)
            e.putLE32(UInt32(truncatingIfNeeded: extent.physical), at: 8)
            return (extent.logical, e)
        }
        var depth = 0
        var nodes: [(block: UInt64, bytes: [UInt8])] = []
        var nextBlock = 0
        while entries.count > Self.rootCapacity {
            var parents: [(first: UInt32, bytes: [UInt8])] = []
            for chunkStart in stride(from: 0, to: entries.count, by: Self.nodeCapacity) {
                let chunk = entries[chunkStart..<min(chunkStart + Self.nodeCapacity, entries.count)]
                let block = nodeBlocks[nextBlock]
                nextBlock += 1
                var node = Self.node(Array(chunk.map(\.bytes)), capacity: Self.nodeCapacity, depth: depth,
                                     size: Ext4WriterGeometry.blockSize)
                let tail = 12 + 12 * Self.nodeCapacity
                node.putLE32(Ext4Checksums.crc32c(checksumSeed, node[0..<tail]), at: tail)
                nodes.append((block, node))
                var index = [UInt8](repeating: 0, count: 12)
                let first = chunk[chunk.startIndex].first
                index.putLE32(first, at: 0)
                index.putLE32(UInt32(truncatingIfNeeded: block), at: 4)
                index.putLE16(UInt16(truncatingIfNeeded: block >> 32), at: 8)
                parents.append((first, index))
            }
            entries = parents
            depth += 1
        }
        iBlock = Self.node(entries.map(\.bytes), capacity: Self.rootCapacity, depth: depth, size: Ext4Inode.iBlockSize)
        self.nodes = nodes
        self.depth = depth
    }

    private static func node(_ entries: [[UInt8]], capacity: Int, depth: Int, size: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: size)
        bytes.putLE16(magic, at: 0)
        bytes.putLE16(UInt16(entries.count), at: 2)
        bytes.putLE16(UInt16(capacity), at: 4)
        bytes.putLE16(UInt16(depth), at: 6)
        for (i, entry) in entries.enumerated() {
            bytes.replaceSubrange((12 + 12 * i)..<(24 + 12 * i), with: entry)
        }
        return bytes
    }

    /// Appends blocks `[physical, physical+count)` at `logical` to `extents`, extending
    /// the last extent when both continue it.
    static func append(_ extents: inout [Ext4WriterExtent], logical: UInt32, physical: UInt64, count: UInt32) {
        var logical = logical, physical = physical, count = count
        if var last = extents.last, last.logical &+ last.length == logical, last.physical + UInt64(last.length) == physical {
            let take = min(count, maxExtentLength - last.length)
            last.length += take
            extents[extents.count - 1] = last
            logical &+= take
            physical += UInt64(take)
            count -= take
        }
        while count > 0 {
            let take = min(count, maxExtentLength)
            extents.append(Ext4WriterExtent(logical: logical, physical: physical, length: take))
            logical &+= take
            physical += UInt64(take)
            count -= take
        }
    }
}
