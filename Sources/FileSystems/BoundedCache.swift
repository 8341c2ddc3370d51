import WispCore

/// A small thread-safe cache with a fixed number of entries, evicting the oldest insertion
/// first. Readers cache parsed inodes, extent maps and directory listings so that path
/// walks and ranged reads do not re-parse metadata, without letting a hostile filesystem
/// grow memory without bound.
final class BoundedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct State {
        var values: [Key: Value] = [:]
        var order: [Key] = []
        var head = 0
    }
    private let state = LockedValue(State())
    let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    subscript(key: Key) -> Value? {
        state.withLock { $0.values[key] }
    }

    func insert(_ value: Value, for key: Key) {
        state.withLock { s in
            if s.values.updateValue(value, forKey: key) != nil { return }
            s.order.append(key)
            if s.order.count - s.head > capacity {
                s.values[s.order[s.head]] = nil
                s.head += 1
                if s.head > capacity {
                    s.order.removeFirst(s.head)
                    s.head = 0
                }
            }
        }
    }
}
