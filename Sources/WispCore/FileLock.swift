#if canImport(Glibc)
import Glibc
#endif

/// An exclusive `flock` on a file or directory. The kernel drops it when the holder dies
/// (kill -9 included), so a lock can never outlive its process and wedge a later run: this
/// is also how Wisp tells a temporary file or staging directory whose writer is gone
/// (unlocked) from one still being written (locked).
public final class FileLock: @unchecked Sendable {
    public let path: String
    private var descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Takes the lock on `path` (a lock file is created if missing), waiting for another
    /// process that holds it; `waiting` is told once, before waiting, so a user sees why.
    /// `create: false` for a directory or a file that must already exist.
    public static func exclusive(_ path: String, create: Bool = true, waiting: (String) -> Void = { _ in }) throws -> FileLock {
        let fd = try openForLocking(path, create: create)
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            guard code == EWOULDBLOCK else { close(fd); throw WispError.posix("flock", path, errno: code) }
            waiting(path)
            while flock(fd, LOCK_EX) != 0 {
                let code = errno
                guard code == EINTR else { close(fd); throw WispError.posix("flock", path, errno: code) }
            }
        }
        return FileLock(path: path, descriptor: fd)
    }

    /// The lock if nobody holds it, nil if someone does (without waiting).
    public static func attempt(_ path: String, create: Bool = true) throws -> FileLock? {
        let fd = try openForLocking(path, create: create)
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK { return nil }
            throw WispError.posix("flock", path, errno: code)
        }
        return FileLock(path: path, descriptor: fd)
    }

    /// Read-only is enough for flock, and lets a lock file another user made be locked too;
    /// a directory opens the same way.
    static func openForLocking(_ path: String, create: Bool = true) throws -> Int32 {
        let fd = create ? open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0o644) : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw WispError.notFound("\(path): no such file") }
            throw WispError.posix("open", path, errno: code)
        }
        return fd
    }

    public func release() {
        guard descriptor >= 0 else { return }
        flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
