import WispCore

/// Reading an ext2/ext3-style block map (12 direct pointers, then single, double and
/// triple indirect blocks) into the same sorted runs an extent tree gives. Only the part
/// of the map that covers i_size is walked; a zero pointer is a hole at any level; an
/// indirect block met twice is a cycle.
extension Ext4Reader {
    func blockMapRuns(_ inode: Ext4Inode) throws -> [Ext4Run] {
        let sb = superblock
        let blockSize = UInt64(sb.blockSize)
        let fileBlocks = inode.size / blockSize + (inode.size % blockSize == 0 ? 0 : 1)
        var walk = MapWalk(inode: inode, fileBlocks: fileBlocks, pointersPerBlock: blockSize / 4)
        let rootReader = ByteReader(Array(inode.iBlock), source: device.name,
                                    structure: "ext4 inode \(inode.number) block map",
                                    baseOffset: inode.offset + UInt64(Ext4Inode.iBlockOffset))
        for i in 0..<12 {
            guard UInt64(i) < fileBlocks else { return walk.runs }
            try walk.add(logical: UInt64(i), physical: UInt64(inode.blockWord(i)), rootReader, at: 4 * i, reader: self)
        }
        var base: UInt64 = 12
        var span = walk.pointersPerBlock
        for level in 1...3 {
            guard base < fileBlocks else { break }
            let pointer = UInt64(inode.blockWord(11 + level))
            try walkIndirect(pointer, level: level, base: base, rootReader, at: 4 * (11 + level), walk: &walk)
            base += span
            span = span.multipliedReportingOverflow(by: walk.pointersPerBlock).partialValue
        }
        return walk.runs
    }

    fileprivate struct MapWalk {
        let inode: Ext4Inode
        let fileBlocks: UInt64
        let pointersPerBlock: UInt64
        var runs: [Ext4Run] = []
        var visited: Set<UInt64> = []

        mutating func add(logical: UInt64, physical: UInt64, _ r: ByteReader, at offset: Int, reader: Ext4Reader) throws {
            guard physical != 0 else { return }
            try reader.checkPhysicalRange(physical, 1, r, at: offset, what: "block pointer for logical block \(logical)")
            if let last = runs.last, last.logicalEnd == logical, last.physical + last.length == physical {
                runs[runs.count - 1].length += 1
                return
            }
            guard runs.count < Ext4Reader.maxRunsPerFile else {
                throw r.error(at: offset, "inode \(inode.number) maps more than \(Ext4Reader.maxRunsPerFile) separate runs")
            }
            runs.append(Ext4Run(logical: logical, physical: physical, length: 1, unwritten: false))
        }
    }

    private func walkIndirect(_ pointer: UInt64, level: Int, base: UInt64, _ parent: ByteReader, at offset: Int,
                              walk: inout MapWalk) throws {
        guard pointer != 0, base < walk.fileBlocks else { return }
        try checkPhysicalRange(pointer, 1, parent, at: offset, what: "indirect block pointer (level \(level))")
        guard walk.visited.insert(pointer).inserted else {
            throw parent.error(at: offset, "indirect block \(pointer) is referenced a second time: the block map has a cycle")
        }
        let bytes = try readBlock(pointer)
        let r = ByteReader(bytes, source: device.name,
                           structure: "ext4 inode \(walk.inode.number) indirect block \(pointer)",
                           baseOffset: pointer * UInt64(superblock.blockSize))
        var childSpan: UInt64 = 1
        for _ in 1..<level { childSpan *= walk.pointersPerBlock }
        for i in 0..<Int(walk.pointersPerBlock) {
            let logical = base + UInt64(i) * childSpan
            guard logical < walk.fileBlocks else { break }
            let child = UInt64(try r.u32le(4 * i))
            if level == 1 {
                try walk.add(logical: logical, physical: child, r, at: 4 * i, reader: self)
            } else {
                try walkIndirect(child, level: level - 1, base: logical, r, at: 4 * i, walk: &walk)
            }
        }
    }
}
