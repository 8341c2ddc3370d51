import Foundation

/// A small lock-protected box for state shared across tasks in synchronous code paths
/// (block I/O is synchronous; actors would force `await` into every read).
public final class LockedValue<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    public init(_ value: Value) { self.value = value }

    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
