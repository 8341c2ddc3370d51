#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Leftovers of a Wisp process that died mid-work (kill -9, power loss, OOM): the hidden
/// temporary files of `AtomicOutput` and the staging directories of `StagingDirectory`.
/// Their writers hold an `flock` on them for as long as they live, so an unlocked one is
/// abandoned and safe to remove, whatever pid namespace its writer ran in.
public enum AbandonedWork {
    /// A writer creates its file and locks it a moment later: one that is still empty and
    /// younger than this may be in that moment, and is left for a later sweep.
    static let creationGrace: TimeInterval = 10

    /// Removes the entries of `directory` whose names start with `prefix` and that no live
    /// process holds locked. Errors are ignored: sweeping is housekeeping, never the work.
    public static func sweep(in directory: String, prefix: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(prefix) {
            let path = "\(directory)/\(name)"
            guard let lock = try? FileLock.attempt(path, create: false) else { continue }
            defer { lock.release() }
            if isPossiblyBeingCreated(path) { continue }
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    static func isPossiblyBeingCreated(_ path: String) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0 else { return false }
        let age = Date().timeIntervalSince1970 - (Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9)
        guard age < creationGrace else { return false }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            return ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).isEmpty
        }
        return st.st_size == 0
    }
}

/// A private working directory `<parent>/.staging-<pid>-<random>`, locked while its owner
/// lives and removed when it is done; ones left by dead processes are swept when the next
/// one is made in the same parent.
public final class StagingDirectory: @unchecked Sendable {
    public let path: String
    private let lock: FileLock

    public init(in parent: String, permissions: UInt16 = 0o700) throws {
        AbandonedWork.sweep(in: parent, prefix: ".staging-")
        let candidate = "\(parent)/.staging-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard mkdir(candidate, mode_t(permissions)) == 0 else { throw WispError.posix("mkdir", candidate, errno: errno) }
        do {
            lock = try FileLock.exclusive(candidate, create: false)
        } catch {
            rmdir(candidate)
            throw error
        }
        path = candidate
    }

    /// Removes the directory and everything in it.
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
        lock.release()
    }

    deinit { remove() }
}
