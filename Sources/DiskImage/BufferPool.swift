import WispCore

/// Recycles the byte buffers that convert workers fill and the writer drains, so steady-state
/// conversion touches the same pages over and over instead of faulting in new zeroed ones.
/// Buffers handed out may hold stale bytes: callers overwrite the whole range they use.
final class BufferPool: @unchecked Sendable {
    private let free = LockedValue<[[UInt8]]>([])
    private let limit: Int

    init(limit: Int) { self.limit = limit }

    /// A buffer of exactly `count` bytes (contents unspecified).
    func take(count: Int) -> [UInt8] {
        if var buffer = free.withLock({ $0.popLast() }) {
            if buffer.count != count {
                if buffer.count > count {
                    buffer.removeLast(buffer.count - count)
                } else {
                    buffer.append(contentsOf: repeatElement(0, count: count - buffer.count))
                }
            }
            return buffer
        }
        return [UInt8](repeating: 0, count: count)
    }

    func give(_ buffer: [UInt8]) {
        free.withLock { if $0.count < limit { $0.append(buffer) } }
    }
}
