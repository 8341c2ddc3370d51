import Testing
import WispTestSupport
@testable import WispCore

/// The O(1) LRU against the obvious model (an array in recency order), over random
/// operation sequences, and the shared wrapper's load-once behaviour.
@Suite struct LRUCacheTests {
    struct Model {
        var order: [(key: Int, value: Int)] = []   // most recent first
        let capacity: Int
        mutating func get(_ key: Int) -> Int? {
            guard let i = order.firstIndex(where: { $0.key == key }) else { return nil }
            let entry = order.remove(at: i)
            order.insert(entry, at: 0)
            return entry.value
        }
        mutating func put(_ key: Int, _ value: Int) {
            if let i = order.firstIndex(where: { $0.key == key }) { order.remove(at: i) }
            order.insert((key, value), at: 0)
            if order.count > capacity { order.removeLast() }
        }
    }

    @Test(arguments: [1, 2, 3, 8, 64])
    func behavesLikeTheModel(capacity: Int) {
        var random = SplitMix64(seed: UInt64(capacity) &* 7919)
        var cache = LRUCache<Int, Int>(capacity: capacity)
        var model = Model(capacity: capacity)
        for step in 0..<20_000 {
            let key = Int(random.next() % UInt64(capacity * 3 + 1))
            switch random.next() % 4 {
            case 0, 1:
                #expect(cache.get(key) == model.get(key), "step \(step)")
            case 2:
                cache.put(key, step)
                model.put(key, step)
            default:
                #expect(cache.peek(key) == model.order.first(where: { $0.key == key })?.value, "step \(step)")
                cache.modify(key) { $0 += 1 }
                if let i = model.order.firstIndex(where: { $0.key == key }) { model.order[i].value += 1 }
            }
            #expect(cache.count == model.order.count)
            if step % 997 == 0 { #expect(cache.keysByRecency == model.order.map(\.key), "step \(step)") }
        }
        #expect(cache.keysByRecency == model.order.map(\.key))
        cache.removeAll()
        #expect(cache.count == 0 && cache.keysByRecency.isEmpty && cache.get(0) == nil)
    }

    @Test func sharedCacheLoadsOnMissOnly() throws {
        let cache = SharedLRUCache<Int, [UInt8]>(capacity: 2)
        var loads = 0
        for key in [1, 2, 1, 3, 1, 2] {
            _ = try cache.value(for: key) { loads += 1; return [UInt8(key)] }
        }
        // 1, 2 load; 1 hits; 3 evicts 2; 1 hits; 2 loads again.
        #expect(loads == 4)
        #expect(cache[1] == [1] && cache[3] == nil && cache[2] == [2])
        struct Failure: Error {}
        #expect(throws: Failure.self) { try cache.value(for: 9) { throw Failure() } }
        #expect(cache[9] == nil)
    }
}
