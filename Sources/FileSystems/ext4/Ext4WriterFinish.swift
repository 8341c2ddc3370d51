import WispCore

/// `finish()`: directories (blocks and inodes), link counts of hard-linked inodes,
/// removed inodes, then bitmaps, group descriptors and superblocks, in that order, so
/// that the superblock that makes it a filesystem is the last thing written.
extension Ext4Writer {
    /// Writes everything that waited for the whole tree and makes the image durable (and,
    /// for a file, renames it into place).
    @discardableResult
    public func finish() throws -> Ext4WriterSummary {
        try checkOpen(name)
        do {
            try writeDirectories()
            try data.flush()
            try inodeTable.flush()
            try patchLinkCounts()
            let groups = try writeBitmaps()
            try writeDescriptorsAndSuperblocks(groups)
            try data.flush()
            if let output {
                try output.commit()
            } else {
                try device.flush()
            }
        } catch {
            state = .failed
            output?.discard()
            throw error
        }
        state = .finished
        return Ext4WriterSummary(blockSize: Ext4WriterGeometry.blockSize, blocksCount: geometry.blocksCount,
                                 freeBlocks: superblock.freeBlocks, inodesCount: geometry.inodesCount,
                                 freeInodes: UInt32(superblock.freeInodes), groupCount: geometry.groupCount,
                                 journalBlocks: journalBlocks)
    }

    /// The path of a directory, for messages.
    func path(ofDirectory number: UInt32) -> String {
        var names: [String] = []
        var current = number
        var steps = 0
        while current != Self.rootInode, let directory = directories[current], steps < 1 << 20 {
            names.append(directory.name.string)
            current = directory.parent
            steps += 1
        }
        return "/" + names.reversed().joined(separator: "/")
    }

    private func writeDirectories() throws {
        for number in directories.keys.sorted() {
            guard let directory = directories[number] else { continue }
            let path = path(ofDirectory: number)
            let entries = directory.children.map { name, child in
                Ext4WriterDirectoryEntry(name: name.bytes, inode: child.inode, fileType: child.fileType)
            }.sorted { $0.name.lexicographicallyPrecedes($1.name) }
            let seed = checksumSeed(inode: number)
            let contents = try Ext4WriterDirectoryBlocks(
                entries: entries, selfInode: number, parentInode: directory.parent,
                minimumBlocks: number == Self.lostAndFoundInode ? 4 : 1, hash: directoryHash, checksumSeed: seed, path: path)
            let runs = try allocator.allocate(UInt64(contents.blocks.count), owner: number, what: path)
            var extents: [Ext4WriterExtent] = []
            var logical = 0
            for run in runs {
                Ext4WriterExtentTree.append(&extents, logical: UInt32(logical), physical: run.lowerBound, count: UInt32(run.count))
                for block in run {
                    try failing { try data.write(contents.blocks[logical], at: block * UInt64(Ext4WriterGeometry.blockSize)) }
                    logical += 1
                }
            }
            let attributes = try Ext4WriterXattrs.split(try Ext4WriterXattrs.entries(directory.metadata.xattrs, path: path), path: path)
            var inode = Ext4WriterInode(mode: Ext4WriterInode.directoryType, metadata: directory.metadata)
            inode.size = UInt64(contents.blocks.count) * UInt64(Ext4WriterGeometry.blockSize)
            let links = 2 + directory.subdirectories
            inode.linksCount = links > Self.maxLinks ? 1 : UInt16(links)
            if contents.indexed { inode.flags |= Self.indexFlag }
            try finishInode(&inode, number: number, extents: extents, dataBlocks: UInt64(contents.blocks.count),
                            attributes: attributes, path: path)
        }
    }

    /// Inodes were written with one link; those with more get their count (and checksum)
    /// rewritten, and removed ones are zeroed.
    private func patchLinkCounts() throws {
        for (number, links) in linkCounts.sorted(by: { $0.key < $1.key }) where links > 1 && isLive(number) {
            let offset = geometry.inodeOffset(number)
            var raw = try failing { try device.read(at: offset, count: Ext4WriterInode.size) }
            raw.putLE16(UInt16(links), at: 0x1A)
            Ext4WriterInode.setChecksum(&raw, number: number, filesystemSeed: filesystemSeed)
            try failing { try device.write(raw, at: offset) }
        }
        let zeros = [UInt8](repeating: 0, count: Ext4WriterInode.size)
        for number in removed.sorted() where !isLive(number) {
            try failing { try inodeTable.write(zeros, at: geometry.inodeOffset(number)) }
        }
        try failing { try inodeTable.flush() }
    }

    /// Block and inode bitmaps for every group (with the padding bits past a group's end
    /// set), counting what the descriptors record.
    private func writeBitmaps() throws -> [Ext4WriterGroupSummary] {
        let g = geometry
        let blockSize = Ext4WriterGeometry.blockSize
        var summaries = [Ext4WriterGroupSummary](repeating: Ext4WriterGroupSummary(), count: g.groupCount)
        let records = allocator.records
        var recordIndex = 0
        var totalFreeBlocks: UInt64 = 0
        for group in 0..<g.groupCount {
            var bitmap = [UInt8](repeating: 0, count: blockSize)
            let start = Ext4WriterGeometry.groupStart(group)
            let count = g.groupBlockCount(group)
            let end = start + count
            func mark(_ range: Range<UInt64>) {
                let from = max(range.lowerBound, start), to = min(range.upperBound, end)
                guard from < to else { return }
                Self.setBits(&bitmap, Int(from - start)..<Int(to - start))
            }
            for range in g.fixedMetadataRanges(in: group) { mark(range) }
            while recordIndex < records.count && records[recordIndex].start < end {
                let record = records[recordIndex]
                let recordEnd = record.start + UInt64(record.length)
                if isLive(record.owner) { mark(record.start..<recordEnd) }
                if recordEnd > end { break }
                recordIndex += 1
            }
            let used = Self.countBits(bitmap, 0..<Int(count))
            Self.setBits(&bitmap, Int(count)..<(blockSize * 8))
            summaries[group].freeBlocks = UInt32(count) - UInt32(used)
            summaries[group].blockBitmapChecksum = Ext4Checksums.crc32c(filesystemSeed, bitmap)
            totalFreeBlocks += count - UInt64(used)
            // On a zeroed target an empty group's all-zero bitmap is already there.
            if !(targetIsZeroed && used == 0 && count == UInt64(blockSize * 8)) {
                try failing { try data.write(bitmap, at: g.blockBitmap[group] * UInt64(blockSize)) }
            }
        }

        var directoriesPerGroup = [UInt32](repeating: 0, count: g.groupCount)
        for number in directories.keys { directoriesPerGroup[Int((number - 1) / g.inodesPerGroup)] += 1 }
        var totalFreeInodes: UInt64 = 0
        let perGroup = Int(g.inodesPerGroup)
        for group in 0..<g.groupCount {
            var bitmap = [UInt8](repeating: 0, count: blockSize)
            var used: UInt32 = 0
            var highest = -1
            let first = UInt32(group) * g.inodesPerGroup + 1
            if first < nextInode {
                for index in 0..<perGroup {
                    let number = first + UInt32(index)
                    guard number < nextInode else { break }
                    if isLive(number) {
                        bitmap[index / 8] |= 1 << UInt8(index % 8)
                        used += 1
                        highest = index
                    }
                }
            }
            Self.setBits(&bitmap, perGroup..<(blockSize * 8))
            if !targetIsZeroed {
                // The rest of the last inode-table block in use: a target that was not
                // zeroed must not show old bytes there to whoever reads the block whole.
                let usedBytes = UInt64(highest + 1) * UInt64(Ext4WriterInode.size)
                let blockEnd = (usedBytes + UInt64(blockSize) - 1) / UInt64(blockSize) * UInt64(blockSize)
                if blockEnd > usedBytes {
                    try failing {
                        try inodeTable.writeZeros(at: g.inodeTable[group] * UInt64(blockSize) + usedBytes, count: blockEnd - usedBytes)
                    }
                }
            }
            var summary = summaries[group]
            summary.freeInodes = g.inodesPerGroup - used
            summary.usedDirectories = directoriesPerGroup[group]
            summary.unusedInodeTail = g.inodesPerGroup - UInt32(highest + 1)
            summary.inodeBitmapChecksum = Ext4Checksums.crc32c(filesystemSeed, bitmap[0..<(perGroup / 8)])
            if used == 0 { summary.flags |= Ext4WriterGroupSummary.inodeUninitialized }
            if targetIsZeroed { summary.flags |= Ext4WriterGroupSummary.inodeTableZeroed }
            summaries[group] = summary
            totalFreeInodes += UInt64(g.inodesPerGroup - used)
            // Nobody reads the inode bitmap of an INODE_UNINIT group (the kernel and
            // e2fsck take it as empty), so a zeroed target needs no copy of it.
            if !(targetIsZeroed && used == 0) {
                try failing { try data.write(bitmap, at: g.inodeBitmap[group] * UInt64(blockSize)) }
            }
        }
        try failing { try inodeTable.flush() }
        superblock.freeBlocks = totalFreeBlocks
        superblock.freeInodes = totalFreeInodes
        return summaries
    }

    private func writeDescriptorsAndSuperblocks(_ summaries: [Ext4WriterGroupSummary]) throws {
        let g = geometry
        let blockSize = UInt64(Ext4WriterGeometry.blockSize)
        var table = [UInt8](repeating: 0, count: Int(g.descriptorBlocks * blockSize))
        for group in 0..<g.groupCount {
            let offset = group * Ext4WriterGeometry.descriptorSize
            table.replaceSubrange(offset..<(offset + Ext4WriterGeometry.descriptorSize),
                                  with: superblock.descriptor(group: group, summaries[group]))
        }
        for group in 0..<g.groupCount where Ext4WriterGeometry.hasSuperblockBackup(group) {
            let first = Ext4WriterGeometry.groupStart(group) * blockSize
            var block = [UInt8](repeating: 0, count: Int(blockSize))
            let superblockOffset = group == 0 ? Int(Ext4Superblock.offset) : 0
            block.replaceSubrange(superblockOffset..<(superblockOffset + Ext4Superblock.size),
                                  with: superblock.encoded(group: group))
            try failing {
                if group == 0 {
                    // Leave the boot sector (the first 1024 bytes) as it is.
                    try data.write(Array(block[1024...]), at: first + 1024)
                } else {
                    try data.write(block, at: first)
                }
                try data.write(table, at: first + blockSize)
            }
        }
    }

    static func setBits(_ bitmap: inout [UInt8], _ range: Range<Int>) {
        var bit = range.lowerBound
        while bit < range.upperBound {
            if bit % 8 == 0 && range.upperBound - bit >= 8 {
                let bytes = (range.upperBound - bit) / 8
                for i in 0..<bytes { bitmap[bit / 8 + i] = 0xFF }
                bit += bytes * 8
            } else {
                bitmap[bit / 8] |= 1 << UInt8(bit % 8)
                bit += 1
            }
        }
    }

    static func countBits(_ bitmap: [UInt8], _ range: Range<Int>) -> Int {
        var count = 0
        var bit = range.lowerBound
        while bit < range.upperBound {
            if bit % 8 == 0 && range.upperBound - bit >= 8 {
                count += bitmap[bit / 8].nonzeroBitCount
                bit += 8
            } else {
                if bitmap[bit / 8] & (1 << UInt8(bit % 8)) != 0 { count += 1 }
                bit += 1
            }
        }
        return count
    }
}
