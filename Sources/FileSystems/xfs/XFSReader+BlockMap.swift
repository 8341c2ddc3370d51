import WispCore

/// One mapping of a fork: `blockCount` logical blocks from `fileBlock` live at fs block
/// `startBlock`; unwritten (preallocated) extents read as zeros.
struct XFSExtent: Sendable, Equatable {
    var fileBlock: UInt64
    var startBlock: UInt64
    var blockCount: UInt64
    var unwritten: Bool
}

struct XFSExtentKey: Hashable, Sendable {
    var inode: UInt64
    var attr: Bool
}

extension XFSReader {
    /// The sorted, validated extent map of a fork in extents or btree format.
    func extents(of node: XFSInode, fork kind: XFSForkKind) throws -> [XFSExtent] {
        let key = XFSExtentKey(inode: node.number, attr: kind == .attr)
        if let cached = extentCache[key] { return cached }
        let fork = node.fork(kind)
        let what = "XFS \(kind == .attr ? "attribute" : "data") fork of inode \(node.number)"
        guard fork.extents <= Self.maxExtents else {
            throw WispError.corrupt(source, what, at: fork.offset, "\(fork.extents) extents is beyond the \(Self.maxExtents) this reader accepts")
        }
        var extents: [XFSExtent] = []
        switch fork.format {
        case .extents:
            guard fork.extents * 16 <= UInt64(fork.bytes.count) else {
                throw WispError.corrupt(source, what, at: fork.offset, "\(fork.extents) extents do not fit the \(fork.bytes.count)-byte fork")
            }
            let r = ByteReader(fork.bytes, source: source, structure: what, baseOffset: fork.offset)
            extents.reserveCapacity(Int(fork.extents))
            for i in 0..<Int(fork.extents) { extents.append(try decodeRecord(r, at: i * 16)) }
        case .btree:
            extents = try walkBmapBtree(node, fork: fork, what: what)
        default:
            throw WispError.corrupt(source, what, at: fork.offset, "fork is not in extents or btree format")
        }
        guard UInt64(extents.count) == fork.extents else {
            throw WispError.corrupt(source, what, at: fork.offset, "the inode counts \(fork.extents) extents but the map holds \(extents.count)")
        }
        let limit = UInt64(1) << UInt64(62 - Int(sb.blockLog))
        var previousEnd: UInt64 = 0
        for e in extents {
            guard e.blockCount > 0, e.fileBlock >= previousEnd, e.fileBlock + e.blockCount <= limit,
                  sb.byteOffset(fsBlock: e.startBlock, count: e.blockCount) != nil else {
                throw WispError.corrupt(source, what, at: fork.offset,
                                        "extent (logical \(e.fileBlock), physical \(e.startBlock), \(e.blockCount) blocks) overlaps its neighbour or lies outside the filesystem")
            }
            previousEnd = e.fileBlock + e.blockCount
        }
        if extents.count <= 65536 { extentCache.insert(extents, for: key) }
        return extents
    }

    /// A packed 128-bit bmbt record: 1 bit unwritten flag, 54 bits logical offset, 52 bits
    /// start block, 21 bits length.
    func decodeRecord(_ r: ByteReader, at offset: Int) throws -> XFSExtent {
        let l0 = try r.u64be(offset), l1 = try r.u64be(offset + 8)
        return XFSExtent(fileBlock: (l0 & ((1 << 63) - 1)) >> 9,
                         startBlock: ((l0 & 0x1FF) << 43) | (l1 >> 21),
                         blockCount: l1 & ((1 << 21) - 1),
                         unwritten: l0 >> 63 != 0)
    }

    /// Walks a bmap btree from its root in the inode (xfs_bmdr_block) down to the leaves,
    /// checking levels strictly decrease, visiting each block once and stopping at the
    /// extent count the inode promises.
    func walkBmapBtree(_ node: XFSInode, fork: (format: XFSForkFormat?, bytes: [UInt8], offset: UInt64, extents: UInt64),
                       what: String) throws -> [XFSExtent] {
        let root = ByteReader(fork.bytes, source: source, structure: "\(what) btree root", baseOffset: fork.offset)
        let level = Int(try root.u16be(0))
        let records = Int(try root.u16be(2))
        let rootMax = (fork.bytes.count - 4) / 16
        guard level >= 1, level <= 9, records >= 1, records <= rootMax else {
            throw root.error(at: 0, "btree root with level \(level) and \(records) records (at most \(rootMax), levels 1...9)")
        }
        var extents: [XFSExtent] = []
        var visited = Set<UInt64>()
        let v5 = sb.isV5
        let headerSize = v5 ? 72 : 24
        let blockMax = (Int(sb.blockSize) - headerSize) / 16

        func visit(_ block: UInt64, level expected: Int) throws {
            guard visited.insert(block).inserted else {
                throw WispError.corrupt(source, what, "btree block \(block) is reached twice (a cycle)")
            }
            // Every leaf holds at least one extent and the tree is at most 9 levels deep.
            guard UInt64(visited.count) <= fork.extents * 9 + 9 else {
                throw WispError.corrupt(source, what, "btree has more blocks than \(fork.extents) extents can need")
            }
            let (bytes, offset) = try readBlocks(block, count: 1, what: "\(what) btree block")
            let structure = "\(what) btree block"
            let r = ByteReader(bytes, source: source, structure: structure, baseOffset: offset)
            let magic = try r.u32be(0)
            guard magic == (v5 ? 0x424D_4133 : 0x424D_4150) else {
                throw r.error(at: 0, "magic is not \(v5 ? "BMA3" : "BMAP")")
            }
            if v5 {
                try verifyV5(bytes, at: offset, structure: structure, crcAt: 64, blknoAt: 24, uuidAt: 40,
                             ownerAt: 56, owner: node.number)
            }
            let level = Int(try r.u16be(4)), count = Int(try r.u16be(6))
            guard level == expected, count >= 1, count <= blockMax else {
                throw r.error(at: 4, "level \(level) with \(count) records (expected level \(expected), 1...\(blockMax) records)")
            }
            if level == 0 {
                guard UInt64(extents.count + count) <= fork.extents else {
                    throw r.error(at: 6, "btree leaves hold more extents than the \(fork.extents) the inode counts")
                }
                for i in 0..<count { extents.append(try decodeRecord(r, at: headerSize + i * 16)) }
            } else {
                let pointers = headerSize + blockMax * 8
                for i in 0..<count { try visit(try r.u64be(pointers + i * 8), level: level - 1) }
            }
        }
        let pointers = 4 + rootMax * 8
        for i in 0..<records { try visit(try root.u64be(pointers + i * 8), level: level - 1) }
        return extents
    }
}
