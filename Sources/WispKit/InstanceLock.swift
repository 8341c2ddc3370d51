#if canImport(Glibc)
import Glibc
#endif
import WispCore

/// An exclusive `flock` on the instance's lock file, held while Wisp starts, stops or
/// removes it: two `wisp start` can't both boot the same overlay. The kernel releases it
/// when the process dies, so a killed Wisp never leaves it held.
public final class InstanceLock: @unchecked Sendable {
    private var fd: Int32

    public init(path: String, name: String) throws {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw WispError.posix("open", path, errno: errno) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            close(fd)
            fd = -1
            if code == EWOULDBLOCK {
                throw WispError(.busy, "instance \(name) is busy: another wisp command is starting, stopping or removing it")
            }
            throw WispError.posix("flock", path, errno: code)
        }
    }

    public func release() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
