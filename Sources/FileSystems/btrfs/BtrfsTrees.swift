import WispCore

/// Reads verified tree blocks and searches trees through one chunk map. The reader holds
/// one built from the full chunk tree; a bootstrap copy with only the superblock's SYSTEM
/// chunks reads the chunk tree itself.
struct BtrfsTrees: Sendable {
    let device: any BlockDevice
    let sb: BtrfsSuperblock
    let source: String
    let chunkMap: BtrfsChunkMap
    let nodeCache: SharedLRUCache<UInt64, BtrfsNode>

    /// Deepest tree btrfs allows (BTRFS_MAX_LEVEL).
    static let maxLevel: UInt8 = 7
    /// More items than this from one search is treated as corruption.
    static let maxSearchItems = 1 << 22

    /// Reads `count` bytes at a logical address, chunk by chunk (first copy of mirrored data).
    func readLogical(into buffer: UnsafeMutableRawBufferPointer, at logical: UInt64, what: String) throws {
        var done = 0
        while done < buffer.count {
            let (address, overflow) = logical.addingReportingOverflow(UInt64(done))
            guard !overflow, let chunk = chunkMap.chunk(containing: address) else {
                throw WispError.corrupt(source, what, "logical address \(address) is not in any chunk")
            }
            let (copies, run) = chunk.map(address)
            let length = Int(min(run, UInt64(buffer.count - done)))
            guard let physical = copies.first, physical.addingReportingOverflow(UInt64(length)).overflow == false,
                  physical + UInt64(length) <= device.size else {
                throw WispError.corrupt(source, what, "logical address \(address) maps outside the device")
            }
            try device.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + length)]), at: physical)
            done += length
        }
    }

    func readLogical(_ logical: UInt64, count: Int, what: String) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try readLogical(into: $0, at: logical, what: what) }
        return bytes
    }

    /// Reads and verifies a tree block, trying each mirror copy until one verifies.
    func node(at logical: UInt64, level: UInt8) throws -> BtrfsNode {
        if let cached = nodeCache[logical], cached.level == level { return cached }
        let nodeSize = UInt64(sb.nodeSize)
        guard logical % UInt64(sb.sectorSize) == 0, let chunk = chunkMap.chunk(containing: logical) else {
            throw WispError.corrupt(source, "btrfs tree block", "logical address \(logical) is unaligned or in no chunk")
        }
        let (copies, run) = chunk.map(logical)
        guard run >= nodeSize else {
            throw WispError.corrupt(source, "btrfs tree block", "block at logical \(logical) crosses a stripe or chunk end")
        }
        var firstError: Error?
        for physical in copies {
            do {
                guard physical.addingReportingOverflow(nodeSize).overflow == false, physical + nodeSize <= device.size else {
                    throw WispError.corrupt(source, "btrfs tree block at logical \(logical)", at: physical, "lies past the end of the device")
                }
                let bytes = try device.read(at: physical, count: Int(nodeSize))
                let node = try BtrfsNode.parse(bytes, logical: logical, physical: physical, expectedLevel: level,
                                               superblock: sb, source: source)
                nodeCache.insert(node, for: logical)
                return node
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        throw firstError ?? WispError.corrupt(source, "btrfs tree block", "no copy of logical \(logical)")
    }

    /// Every leaf item with `from <= key <= through`, in key order.
    func items(in root: BtrfsTreeRoot, from: BtrfsKey, through: BtrfsKey) throws -> [(key: BtrfsKey, data: ByteReader)] {
        guard root.level <= Self.maxLevel else {
            throw WispError.corrupt(source, "btrfs tree root at \(root.bytenr)", "level \(root.level) exceeds \(Self.maxLevel)")
        }
        var result: [(key: BtrfsKey, data: ByteReader)] = []
        try collect(root.bytenr, level: root.level, lowerBound: nil, from: from, through: through, into: &result)
        return result
    }

    /// Descends from one block. Levels strictly decrease on the way down, so a corrupted
    /// pointer can never make the walk loop; `lowerBound` is the parent's key for this
    /// child, which the child's first key must equal.
    private func collect(_ logical: UInt64, level: UInt8, lowerBound: BtrfsKey?, from: BtrfsKey, through: BtrfsKey, into result: inout [(key: BtrfsKey, data: ByteReader)]) throws {
        let node = try node(at: logical, level: level)
        if let lowerBound, node.count > 0, try node.key(0) != lowerBound {
            throw node.reader.error(at: BtrfsNode.headerSize, "first key \(try node.key(0)) differs from the parent's \(lowerBound)")
        }
        if level == 0 {
            // Binary search for the first key >= from.
            var low = 0, high = node.count
            while low < high {
                let mid = (low + high) / 2
                if try node.key(mid) < from { low = mid + 1 } else { high = mid }
            }
            var i = low
            while i < node.count {
                let key = try node.key(i)
                if through < key { break }
                result.append((key, try node.item(i)))
                guard result.count <= Self.maxSearchItems else {
                    throw WispError.corrupt(source, "btrfs tree", "a search returned more than \(Self.maxSearchItems) items")
                }
                i += 1
            }
            return
        }
        // Last child whose key <= from, then onwards while keys <= through.
        var low = 0, high = node.count
        while low < high {
            let mid = (low + high) / 2
            if try node.key(mid) <= from { low = mid + 1 } else { high = mid }
        }
        var i = max(low - 1, 0)
        while i < node.count {
            let key = try node.key(i)
            if through < key { break }
            try collect(try node.childPointer(i), level: level - 1, lowerBound: key, from: from, through: through,into: &result)
            i += 1
        }
    }

    /// Builds the chunk map: bootstrap from the superblock's SYSTEM chunks, then every
    /// CHUNK_ITEM of the chunk tree.
    static func load(device: any BlockDevice, sb: BtrfsSuperblock, cache: SharedLRUCache<UInt64, BtrfsNode>) throws -> BtrfsTrees {
        let source = device.name
        var map = BtrfsChunkMap()
        for (key, item) in sb.systemChunks {
            try map.insert(try BtrfsChunk.parse(key: key, item, deviceID: sb.deviceID, source: source), source: source)
        }
        let bootstrap = BtrfsTrees(device: device, sb: sb, source: source, chunkMap: map, nodeCache: cache)
        let chunkRoot = BtrfsTreeRoot(bytenr: sb.chunkTree, level: sb.chunkRootLevel)
        let items = try bootstrap.items(in: chunkRoot, from: BtrfsKey(objectID: 256, type: BtrfsKey.chunkItem, offset: 0),
                                        through: BtrfsKey(objectID: 256, type: BtrfsKey.chunkItem, offset: .max))
        for (key, item) in items {
            try map.insert(try BtrfsChunk.parse(key: key, item, deviceID: sb.deviceID, source: source), source: source)
        }
        return BtrfsTrees(device: device, sb: sb, source: source, chunkMap: map, nodeCache: cache)
    }
}
