import WispCore

/// A small bounded cache of recently read metadata blocks (inode table blocks), least
/// recently used out first. Listing a directory and stat-ing everything in it touches
/// the same few inode table blocks hundreds of times; the bound keeps a walk over a
/// whole filesystem from holding it all in memory.
final class Ext4BlockCache: Sendable {
    private struct State {
        var blocks: [UInt64: (bytes: [UInt8], lastUse: UInt64)] = [:]
        var clock: UInt64 = 0
    }

    private let state = LockedValue(State())
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 2)
    }

    /// The cached block, or what `load` reads (then cached).
    func block(_ number: UInt64, load: () throws -> [UInt8]) throws -> [UInt8] {
        let hit = state.withLock { s -> [UInt8]? in
            guard let entry = s.blocks[number] else { return nil }
            s.clock &+= 1
            s.blocks[number] = (entry.bytes, s.clock)
            return entry.bytes
        }
        if let hit { return hit }
        let bytes = try load()
        state.withLock { s in
            if s.blocks.count >= capacity {
                // Drop the older half in one go so eviction stays cheap on average.
                let keep = s.blocks.sorted { $0.value.lastUse > $1.value.lastUse }.prefix(capacity / 2)
                s.blocks = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
            }
            s.clock &+= 1
            s.blocks[number] = (bytes, s.clock)
        }
        return bytes
    }
}
