import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An output file that appears whole or not at all: bytes go to a hidden temporary file
/// beside the target, which is fsynced and renamed over the target on `commit()`. If the
/// work fails, `discard()` removes the temporary. The temporary is `flock`ed while its
/// writer lives, so when the process dies instead (kill -9), the next output to the same
/// target finds it unlocked and removes it (`AbandonedWork`): nothing stale stays beside
/// an output, and a live writer's temporary is never touched. Errors name the target,
/// never the temporary; a full disk is `.noSpace` with the space needed.
public final class AtomicOutput: @unchecked Sendable {
    public let targetPath: String
    public let temporaryPath: String
    public let file: PosixFile
    private let liveness: FileLock
    private var finished = false

    /// `expectedSize`: the output's size when known in advance; the filesystem is checked
    /// for that much free space before anything is created.
    public init(path: String, permissions: UInt32 = 0o644, expectedSize: UInt64? = nil) throws {
        targetPath = path
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let prefix = "." + url.lastPathComponent + ".tmp-"
        let creatingPrefix = "." + url.lastPathComponent + ".new-"
        AbandonedWork.sweep(in: directory, prefix: prefix, creatingPrefix: creatingPrefix)
        if let expectedSize { try DiskSpace.require(expectedSize, for: path, what: "writing it") }
        // Locked before it is named `.tmp-`: the kernel drops the lock when this process
        // dies, which is how a later sweep knows the temporary is abandoned.
        var created: PosixFile? = nil
        let (temporary, lock) = try AbandonedWork.createLocked(
            in: directory, prefix: prefix, creatingPrefix: creatingPrefix,
            suffix: String(UInt64.random(in: 0...UInt64.max), radix: 36)) { candidate in
            created = try PosixFile(path: candidate, mode: .createExclusive(permissions: permissions),
                                    displayPath: path, expectedSize: expectedSize)
        }
        guard let created else { throw WispError(.failed, "\(path): the temporary output was not created") }
        temporaryPath = temporary
        liveness = lock
        file = created
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
        liveness.release()
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
        liveness.release()
    }

    deinit { discard() }
}
