import WispCore

/// Blocks handed out by the allocator, with the inode that owns them. The cursor only
/// moves forward, so records are in ascending block order; a removed inode's records are
/// skipped when the bitmaps are made, which frees its blocks.
struct Ext4WriterAllocation: Sendable {
    var start: UInt64
    var length: UInt32
    var owner: UInt32
}

/// A cursor over the geometry's free ranges: every block goes to whoever asks next, so
/// data streamed in arrives contiguously on disk and is written in long sequential runs.
struct Ext4WriterAllocator: Sendable {
    private let ranges: [Range<UInt64>]
    private var rangeIndex = 0
    private(set) var next: UInt64
    private(set) var records: [Ext4WriterAllocation] = []
    private(set) var freeBlocks: UInt64

    init(ranges: [Range<UInt64>]) {
        self.ranges = ranges
        next = ranges.first?.lowerBound ?? 0
        freeBlocks = ranges.reduce(0) { $0 + UInt64($1.count) }
    }

    /// Up to `count` consecutive blocks at the cursor (fewer where fixed metadata
    /// interrupts), or nil when the image is full.
    mutating func allocateRun(upTo count: UInt64, owner: UInt32) -> Range<UInt64>? {
        guard count > 0 else { return nil }
        while rangeIndex < ranges.count && next >= ranges[rangeIndex].upperBound {
            rangeIndex += 1
            if rangeIndex < ranges.count { next = ranges[rangeIndex].lowerBound }
        }
        guard rangeIndex < ranges.count else { return nil }
        let take = min(count, ranges[rangeIndex].upperBound - next, UInt64(UInt32.max))
        let run = next..<(next + take)
        next += take
        freeBlocks -= take
        record(run, owner: owner)
        return run
    }

    /// Exactly `count` blocks as one or more runs; throws (naming `what`) when the image
    /// has fewer left.
    mutating func allocate(_ count: UInt64, owner: UInt32, what: @autoclosure () -> String) throws -> [Range<UInt64>] {
        guard count <= freeBlocks else { throw Self.full(what(), needed: count, free: freeBlocks) }
        var runs: [Range<UInt64>] = []
        var remaining = count
        while remaining > 0 {
            guard let run = allocateRun(upTo: remaining, owner: owner) else {
                throw Self.full(what(), needed: count, free: freeBlocks)
            }
            runs.append(run)
            remaining -= UInt64(run.count)
        }
        return runs
    }

    /// Where the cursor stands, to give back everything allocated after it.
    struct Mark {
        fileprivate let rangeIndex: Int
        fileprivate let next: UInt64
        fileprivate let records: Int
        fileprivate let freeBlocks: UInt64
    }

    var mark: Mark { Mark(rangeIndex: rangeIndex, next: next, records: records.count, freeBlocks: freeBlocks) }

    /// Frees every block allocated since `mark` (a file whose contents failed). Records
    /// never merge across owners, so the ones made since belong to the failed owner alone.
    mutating func rollBack(to mark: Mark) {
        rangeIndex = mark.rangeIndex
        next = mark.next
        freeBlocks = mark.freeBlocks
        records.removeLast(records.count - mark.records)
    }

    static func full(_ what: String, needed: UInt64, free: UInt64) -> WispError {
        WispError.invalidArgument("\(what): the ext4 image is full (\(needed) more blocks of \(Ext4WriterGeometry.blockSize) bytes needed, \(free) free); make it larger")
    }

    private mutating func record(_ run: Range<UInt64>, owner: UInt32) {
        if let last = records.last, last.owner == owner, last.start + UInt64(last.length) == run.lowerBound,
           UInt64(last.length) + UInt64(run.count) <= UInt64(UInt32.max) {
            records[records.count - 1].length += UInt32(run.count)
        } else {
            records.append(Ext4WriterAllocation(start: run.lowerBound, length: UInt32(run.count), owner: owner))
        }
    }
}
