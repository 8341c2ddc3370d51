import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An output file that appears whole or not at all: bytes go to a hidden temporary file
/// beside the target, which is fsynced and renamed over the target on `commit()`. If the
/// work fails (or the process dies), `discard()` / the next run removes the temporary.
public final class AtomicOutput: @unchecked Sendable {
    public let targetPath: String
    public let temporaryPath: String
    public let file: PosixFile
    private var finished = false

    public init(path: String, permissions: UInt32 = 0o644) throws {
        targetPath = path
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let random = UInt64.random(in: 0...UInt64.max)
        temporaryPath = directory + "/." + url.lastPathComponent + ".tmp-" + String(random, radix: 36)
        file = try PosixFile(path: temporaryPath, mode: .createExclusive(permissions: permissions))
    }

    /// Flushes, syncs and renames into place, then syncs the directory so the rename is
    /// durable too.
    public func commit() throws {
        guard !finished else { return }
        try file.sync()
        guard rename(temporaryPath, targetPath) == 0 else {
            let code = errno
            discard()
            throw WispError.posix("rename", targetPath, errno: code)
        }
        finished = true
        file.close()
        let directory = URL(fileURLWithPath: targetPath).deletingLastPathComponent().path
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            _ = fsync(fd)
            _ = close(fd)
        }
    }

    /// Removes the temporary file; the target is untouched.
    public func discard() {
        guard !finished else { return }
        finished = true
        file.close()
        unlink(temporaryPath)
    }

    deinit { discard() }
}
