import WispCore

/// One chunk: a logical range and where its copies or stripes live on the device.
struct BtrfsChunk: Sendable {
    static let raid0: UInt64 = 0x8, raid1: UInt64 = 0x10, dup: UInt64 = 0x20, raid10: UInt64 = 0x40
    static let raid5: UInt64 = 0x80, raid6: UInt64 = 0x100, raid1c3: UInt64 = 0x200, raid1c4: UInt64 = 0x400

    let logical: UInt64
    let length: UInt64
    let stripeLength: UInt64
    let type: UInt64
    let subStripes: UInt64
    /// Physical offsets of the stripes on the one device.
    let stripes: [UInt64]

    /// Parses a CHUNK_ITEM; every stripe must be on the device this superblock describes.
    static func parse(key: BtrfsKey, _ r: ByteReader, deviceID: UInt64, source: String) throws -> BtrfsChunk {
        let length = try r.u64le(0), stripeLength = try r.u64le(16), type = try r.u64le(24)
        let count = Int(try r.u16le(44)), subStripes = UInt64(try r.u16le(46))
        guard length > 0, key.offset.addingReportingOverflow(length).overflow == false else {
            throw r.error(at: 0, "chunk at logical \(key.offset) has invalid length \(length)")
        }
        guard stripeLength >= 4096, stripeLength <= 1 << 30, stripeLength.nonzeroBitCount == 1 else {
            throw r.error(at: 16, "stripe length \(stripeLength) is not a power of two of at least 4096")
        }
        guard count >= 1, r.count >= 48 + 32 * count else { throw r.error(at: 44, "\(count) stripes do not fit the item") }
        if type & (raid5 | raid6) != 0 {
            throw WispError.unsupported(source, "btrfs chunk at logical \(key.offset) uses RAID5/6 parity, which Wisp does not read")
        }
        var stripes: [UInt64] = []
        for i in 0..<count {
            let devid = try r.u64le(48 + 32 * i)
            guard devid == deviceID else {
                throw WispError.unsupported(source, "btrfs chunk at logical \(key.offset) has a stripe on device \(devid); multi-device filesystems are not supported (this image is device \(deviceID))")
            }
            stripes.append(try r.u64le(56 + 32 * i))
        }
        if type & raid10 != 0, subStripes < 1 || count % Int(subStripes) != 0 {
            throw r.error(at: 46, "RAID10 chunk with \(count) stripes and \(subStripes) sub-stripes")
        }
        return BtrfsChunk(logical: key.offset, length: length, stripeLength: stripeLength, type: type,
                          subStripes: max(subStripes, 1), stripes: stripes)
    }

    /// Physical addresses of every copy of `logical`, and how many bytes from there stay
    /// contiguous (to the end of the stripe or chunk).
    func map(_ logical: UInt64) -> (copies: [UInt64], run: UInt64) {
        let offset = logical - self.logical
        if type & (BtrfsChunk.raid0 | BtrfsChunk.raid10) != 0 {
            let stripeNumber = offset / stripeLength, within = offset % stripeLength
            let run = min(stripeLength - within, length - offset)
            if type & BtrfsChunk.raid0 != 0 {
                let n = UInt64(stripes.count)
                let physical = stripes[Int(stripeNumber % n)] + (stripeNumber / n) * stripeLength + within
                return ([physical], run)
            }
            let factor = UInt64(stripes.count) / subStripes
            let first = Int((stripeNumber % factor) * subStripes)
            let base = (stripeNumber / factor) * stripeLength + within
            return ((first..<(first + Int(subStripes))).map { stripes[$0] + base }, run)
        }
        // single, dup, raid1, raid1c3, raid1c4: every stripe is a full copy.
        return (stripes.map { $0 + offset }, length - offset)
    }
}

/// The logical → physical map, built from the superblock's SYSTEM chunks and then the
/// whole chunk tree. Chunks are sorted and non-overlapping; lookups are binary searches.
struct BtrfsChunkMap: Sendable {
    private(set) var chunks: [BtrfsChunk] = []

    mutating func insert(_ chunk: BtrfsChunk, source: String) throws {
        var low = 0, high = chunks.count
        while low < high {
            let mid = (low + high) / 2
            if chunks[mid].logical < chunk.logical { low = mid + 1 } else { high = mid }
        }
        if low < chunks.count, chunks[low].logical == chunk.logical, chunks[low].length == chunk.length { return }
        let overlapsNext = low < chunks.count && chunk.logical + chunk.length > chunks[low].logical
        let overlapsPrevious = low > 0 && chunks[low - 1].logical + chunks[low - 1].length > chunk.logical
        guard !overlapsNext, !overlapsPrevious else {
            throw WispError.corrupt(source, "btrfs chunk tree", "chunk at logical \(chunk.logical)+\(chunk.length) overlaps another chunk")
        }
        guard chunks.count < 1 << 20 else { throw WispError.corrupt(source, "btrfs chunk tree", "more than 2^20 chunks") }
        chunks.insert(chunk, at: low)
    }

    func chunk(containing logical: UInt64) -> BtrfsChunk? {
        var low = 0, high = chunks.count
        while low < high {
            let mid = (low + high) / 2
            if chunks[mid].logical + chunks[mid].length <= logical { low = mid + 1 } else { high = mid }
        }
        guard low < chunks.count, chunks[low].logical <= logical else { return nil }
        return chunks[low]
    }
}
