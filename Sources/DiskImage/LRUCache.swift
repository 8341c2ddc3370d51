/// A small bounded cache with least-recently-used eviction, for L2 tables, refcount blocks
/// and decompressed clusters. Not thread-safe: callers hold their own lock. Eviction scans
/// the entries, which is cheap at the capacities used here (at most a few hundred).
struct LRUCache<Key: Hashable, Value> {
    private var entries: [Key: (value: Value, stamp: UInt64)] = [:]
    private var clock: UInt64 = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    mutating func get(_ key: Key) -> Value? {
        guard let entry = entries[key] else { return nil }
        clock &+= 1
        entries[key] = (entry.value, clock)
        return entry.value
    }

    mutating func put(_ key: Key, _ value: Value) {
        clock &+= 1
        if entries[key] == nil, entries.count >= capacity,
           let oldest = entries.min(by: { $0.value.stamp < $1.value.stamp })?.key {
            entries.removeValue(forKey: oldest)
        }
        entries[key] = (value, clock)
    }

    /// Updates a cached value in place if present (write-through callers).
    mutating func modify(_ key: Key, _ body: (inout Value) -> Void) {
        guard var entry = entries[key] else { return }
        body(&entry.value)
        entries[key] = entry
    }

    mutating func removeAll() { entries.removeAll() }
}
