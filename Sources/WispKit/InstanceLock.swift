import WispCore

/// An exclusive `flock` on the instance's lock file (WispCore's `FileLock`), held while
/// Wisp starts, stops or removes it: two `wisp start` can't both boot the same overlay. The
/// kernel releases it when the process dies, so a killed Wisp never leaves it held.
public final class InstanceLock: @unchecked Sendable {
    private let lock: FileLock

    public init(path: String, name: String) throws {
        guard let lock = try FileLock.attempt(path) else {
            throw WispError(.busy, "instance \(name) is busy: another wisp command is starting, stopping or removing it")
        }
        self.lock = lock
    }

    public func release() { lock.release() }
}
