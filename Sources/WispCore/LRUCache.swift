/// A bounded cache that evicts the least recently used entry, in O(1) per operation: a
/// dictionary from key to slot plus a doubly linked recency list threaded through the slots.
/// Every reader of hostile images caches parsed metadata in one of these, so a malicious
/// image cannot grow memory past `capacity` entries. Not thread-safe; `SharedLRUCache` is.
public struct LRUCache<Key: Hashable, Value> {
    private struct Slot {
        var key: Key
        var value: Value
        var newer: Int
        var older: Int
    }

    private var slots: [Slot] = []
    private var index: [Key: Int] = [:]
    /// Most and least recently used slots; -1 when empty.
    private var newest = -1
    private var oldest = -1
    public let capacity: Int

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    public var count: Int { index.count }

    /// The value for `key`, which becomes the most recently used.
    public mutating func get(_ key: Key) -> Value? {
        guard let slot = index[key] else { return nil }
        touch(slot)
        return slots[slot].value
    }

    /// The value for `key` without changing the recency order.
    public func peek(_ key: Key) -> Value? {
        index[key].map { slots[$0].value }
    }

    /// Stores `value` as the most recently used, evicting the least recently used entry when
    /// the cache is full.
    public mutating func put(_ key: Key, _ value: Value) {
        if let slot = index[key] {
            slots[slot].value = value
            touch(slot)
            return
        }
        let slot: Int
        if slots.count < capacity {
            slot = slots.count
            slots.append(Slot(key: key, value: value, newer: -1, older: -1))
        } else {
            slot = oldest
            unlink(slot)
            index[slots[slot].key] = nil
            slots[slot] = Slot(key: key, value: value, newer: -1, older: -1)
        }
        index[key] = slot
        pushNewest(slot)
    }

    /// Updates a cached value in place if present (write-through callers); recency is kept.
    public mutating func modify(_ key: Key, _ body: (inout Value) -> Void) {
        guard let slot = index[key] else { return }
        body(&slots[slot].value)
    }

    public mutating func removeAll() {
        slots.removeAll()
        index.removeAll()
        newest = -1
        oldest = -1
    }

    /// Keys from most to least recently used (for tests and diagnostics).
    public var keysByRecency: [Key] {
        var keys: [Key] = []
        var slot = newest
        while slot >= 0 {
            keys.append(slots[slot].key)
            slot = slots[slot].older
        }
        return keys
    }

    private mutating func touch(_ slot: Int) {
        guard slot != newest else { return }
        unlink(slot)
        pushNewest(slot)
    }

    private mutating func unlink(_ slot: Int) {
        let newer = slots[slot].newer, older = slots[slot].older
        if newer >= 0 { slots[newer].older = older } else { newest = older }
        if older >= 0 { slots[older].newer = newer } else { oldest = newer }
        slots[slot].newer = -1
        slots[slot].older = -1
    }

    private mutating func pushNewest(_ slot: Int) {
        slots[slot].older = newest
        slots[slot].newer = -1
        if newest >= 0 { slots[newest].newer = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
    }
}

/// `LRUCache` behind a lock, for caches that several reader threads share.
public final class SharedLRUCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let cache: LockedValue<LRUCache<Key, Value>>

    public init(capacity: Int) { cache = LockedValue(LRUCache(capacity: capacity)) }

    public var capacity: Int { cache.withLock { $0.capacity } }

    public subscript(key: Key) -> Value? {
        cache.withLock { $0.get(key) }
    }

    public func insert(_ value: Value, for key: Key) {
        cache.withLock { $0.put(key, value) }
    }

    /// The cached value, or what `load` produces (then cached). `load` runs outside the lock,
    /// so two threads missing the same key may both load it; the last one is kept.
    public func value(for key: Key, load: () throws -> Value) rethrows -> Value {
        if let hit = self[key] { return hit }
        let value = try load()
        insert(value, for: key)
        return value
    }
}

// A value type holding only keys, values and slot numbers: Sendable when they are (the
// nested Slot type cannot state that conditionally itself).
extension LRUCache: @unchecked Sendable where Key: Sendable, Value: Sendable {}
