#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Leftovers of a Wisp process that died mid-work (kill -9, power loss, OOM): the hidden
/// temporary files of `AtomicOutput` and the staging directories of `StagingDirectory`.
/// Their writers hold an `flock` on them for as long as they live, so an unlocked one is
/// abandoned and safe to remove, whatever pid namespace its writer ran in.
public enum AbandonedWork {
    /// Removes the entries of `directory` whose names start with `prefix` and that no live
    /// process holds locked. Writers lock before the name has this prefix (they are made
    /// under a `creatingPrefix` name and renamed once locked), so an unlocked one is never
    /// one still being set up. Entries still under `creatingPrefix` exist for microseconds
    /// in a live process; one an hour old belongs to a process killed in that moment.
    /// Errors are ignored: sweeping is housekeeping, never the work.
    public static func sweep(in directory: String, prefix: String, creatingPrefix: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names {
            let path = "\(directory)/\(name)"
            if name.hasPrefix(prefix) {
                guard let lock = try? FileLock.attempt(path, create: false) else { continue }
                try? FileManager.default.removeItem(atPath: path)
                lock.release()
            } else if name.hasPrefix(creatingPrefix), age(of: path) > 3600 {
                try? FileManager.default.removeItem(atPath: path)
            }
        }
    }

    /// Every abandoned `AtomicOutput` temporary in `directory`, whatever its target: for
    /// directories only Wisp writes (the caches), where a killed download or blob of one
    /// name must not wait for that same name to be written again to be cleaned.
    public static func sweepTemporaries(in directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(".") {
            guard let range = name.range(of: ".tmp-", options: .backwards), range.lowerBound > name.index(after: name.startIndex) else { continue }
            let path = "\(directory)/\(name)"
            guard let lock = try? FileLock.attempt(path, create: false) else { continue }
            try? FileManager.default.removeItem(atPath: path)
            lock.release()
        }
    }

    /// Makes `<directory>/<creatingPrefix><suffix>` with `make`, locks it, then renames it
    /// to `<prefix><suffix>`: the rename keeps the inode, so the entry is locked before it
    /// carries the name sweeps look at. Returns the final path and the lock.
    static func createLocked(in directory: String, prefix: String, creatingPrefix: String, suffix: String,
                             make: (String) throws -> Void) throws -> (path: String, lock: FileLock) {
        let creating = "\(directory)/\(creatingPrefix)\(suffix)"
        let final = "\(directory)/\(prefix)\(suffix)"
        try make(creating)
        do {
            let lock = try FileLock.exclusive(creating, create: false)
            guard rename(creating, final) == 0 else { throw WispError.posix("rename", final, errno: errno) }
            return (final, lock)
        } catch {
            try? FileManager.default.removeItem(atPath: creating)
            throw error
        }
    }

    static func age(of path: String) -> TimeInterval {
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        return Date().timeIntervalSince1970 - (Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9)
    }
}

/// A private working directory `<parent>/.staging-<pid>-<random>`, locked while its owner
/// lives and removed when it is done; ones left by dead processes are swept when the next
/// one is made in the same parent.
public final class StagingDirectory: @unchecked Sendable {
    public let path: String
    private let lock: FileLock

    public init(in parent: String, permissions: UInt16 = 0o700) throws {
        AbandonedWork.sweep(in: parent, prefix: ".staging-", creatingPrefix: ".new-staging-")
        (path, lock) = try AbandonedWork.createLocked(
            in: parent, prefix: ".staging-", creatingPrefix: ".new-staging-",
            suffix: "\(getpid())-\(UInt32.random(in: 0...UInt32.max))") { candidate in
            guard mkdir(candidate, mode_t(permissions)) == 0 else { throw WispError.posix("mkdir", candidate, errno: errno) }
        }
    }

    /// Removes the directory and everything in it.
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
        lock.release()
    }

    deinit { remove() }
}
