import FileSystems
import Foundation
import WispCore
#if canImport(Glibc)
import Glibc
#endif

/// Copies files out of a guest filesystem onto the host (`wisp fs get`): regular files are
/// written atomically with their mode and times; directories are recreated with their
/// modes and times; symlinks are recreated as they are (never followed on the host);
/// owners are kept when running as root. Names from the image are hostile: anything that
/// is not a plain path component is skipped with a warning, and every directory is one
/// this run created, so an entry can never write outside the destination.
public struct GuestExtraction: Sendable {
    public struct Report: Sendable, Equatable {
        public var files = 0
        public var directories = 0
        public var symlinks = 0
        public var bytes: UInt64 = 0
        public var warnings: [String] = []
    }

    public let fileSystem: any FileSystem
    public var chunkSize = 1 << 20
    static let maxDepth = 256
    let keepOwners = geteuid() == 0

    public init(fileSystem: any FileSystem) {
        self.fileSystem = fileSystem
    }

    /// Copies `path` (following a final symlink, like `cp` on a named file) to `destination`.
    /// If `destination` is an existing directory the copy goes inside it under the source's
    /// name, as with `cp -r`.
    public func extract(_ path: String, to destination: String) throws -> Report {
        let resolved = try fileSystem.resolve(path)
        let info = try fileSystem.stat(inode: resolved.inode)
        var target = destination
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: destination, isDirectory: &isDir), isDir.boolValue {
            if let name = resolved.path.split(separator: "/").last {
                target = destination + "/" + name
            } else if info.type == .directory {
                // The root copied into an existing directory: its contents go there.
                var report = Report()
                var visited: Set<UInt64> = [resolved.inode]
                var plan = Plan()
                try copyChildren(of: resolved.inode, into: destination, depth: 0, visited: &visited, report: &report, plan: &plan)
                try finish(plan, report: &report)
                return report
            }
        }
        var report = Report()
        var visited: Set<UInt64> = []
        var plan = Plan()
        try copy(inode: resolved.inode, info: info, to: target, depth: 0, visited: &visited, report: &report, plan: &plan)
        try finish(plan, report: &report)
        return report
    }

    /// Work the tree walk defers: file contents (copied on all cores afterwards) and
    /// directory modes and times (applied last, children first, since writing into a
    /// directory changes its time and a read-only mode would stop the writes).
    struct Plan {
        var files: [(inode: UInt64, info: FileStat, target: String)] = []
        var directories: [(info: FileStat, path: String)] = []
    }

    func finish(_ plan: Plan, report: inout Report) throws {
        let failure = LockedValue<(any Error)?>(nil)
        let files = plan.files
        let workers = max(1, min(files.count, ProcessInfo.processInfo.activeProcessorCount))
        let next = LockedValue(0)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while failure.withLock({ $0 == nil }) {
                let index = next.withLock { value -> Int in
                    defer { value += 1 }
                    return value
                }
                guard index < files.count else { return }
                let job = files[index]
                do {
                    try copyFile(inode: job.inode, info: job.info, to: job.target)
                } catch {
                    failure.withLock { if $0 == nil { $0 = error } }
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        report.files += files.count
        report.bytes += files.reduce(0) { $0 + $1.info.size }
        for directory in plan.directories {
            try applyMetadata(directory.info, to: directory.path, isSymlink: false)
        }
    }

    func copy(inode: UInt64, info: FileStat, to target: String, depth: Int, visited: inout Set<UInt64>,
              report: inout Report, plan: inout Plan) throws {
        switch info.type {
        case .regular:
            plan.files.append((inode, info, target))
        case .directory:
            guard depth < Self.maxDepth else {
                report.warnings.append("\(target): deeper than \(Self.maxDepth) levels; not copied")
                return
            }
            guard visited.insert(inode).inserted else {
                report.warnings.append("\(target): directory loop in the image (inode \(inode) seen before); not copied again")
                return
            }
            // mkdir, not "create if missing": an existing name could be a symlink placed there.
            guard mkdir(target, 0o700) == 0 else { throw WispError.posix("mkdir", target, errno: errno) }
            report.directories += 1
            try copyChildren(of: inode, into: target, depth: depth + 1, visited: &visited, report: &report, plan: &plan)
            plan.directories.append((info, target))
        case .symlink:
            let link = try fileSystem.readlink(inode: inode)
            guard symlink(link, target) == 0 else { throw WispError.posix("symlink", target, errno: errno) }
            try applyMetadata(info, to: target, isSymlink: true)
            report.symlinks += 1
        case .fifo where keepOwners:
            guard mkfifo(target, mode_t(info.permissions)) == 0 else { throw WispError.posix("mkfifo", target, errno: errno) }
            try applyMetadata(info, to: target, isSymlink: false)
        case .characterDevice where keepOwners, .blockDevice where keepOwners:
            // glibc's makedev().
            let major = UInt64(info.deviceMajor), minor = UInt64(info.deviceMinor)
            let device = dev_t((major & 0xFFFF_F000) << 32 | (major & 0xFFF) << 8 | (minor & 0xFFFF_FF00) << 12 | (minor & 0xFF))
            guard mknod(target, mode_t(info.mode), device) == 0 else { throw WispError.posix("mknod", target, errno: errno) }
            try applyMetadata(info, to: target, isSymlink: false)
        default:
            report.warnings.append("\(target): \(info.type.rawValue) not copied" + (keepOwners ? "" : " (needs root)"))
        }
    }

    func copyChildren(of inode: UInt64, into directory: String, depth: Int, visited: inout Set<UInt64>,
                      report: inout Report, plan: inout Plan) throws {
        var seen: Set<String> = []
        for entry in try fileSystem.list(directory: inode) {
            let name = entry.name
            guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.contains("\0") else {
                report.warnings.append("\(directory): skipped an entry with an unusable name \(name.debugDescription)")
                continue
            }
            guard seen.insert(name).inserted else {
                report.warnings.append("\(directory)/\(name): duplicate name in the image; only the first copied")
                continue
            }
            let info = try fileSystem.stat(inode: entry.inode)
            try copy(inode: entry.inode, info: info, to: directory + "/" + name, depth: depth, visited: &visited,
                     report: &report, plan: &plan)
        }
    }

    func copyFile(inode: UInt64, info: FileStat, to target: String) throws {
        let output = try AtomicOutput(path: target, permissions: 0o600)
        do {
            var offset: UInt64 = 0
            while offset < info.size {
                let piece = try fileSystem.read(inode: inode, offset: offset, count: Int(min(UInt64(chunkSize), info.size - offset)))
                if piece.isEmpty { break }
                try piece.withUnsafeBytes { try output.file.write($0, at: offset) }
                offset += UInt64(piece.count)
            }
            let fd = output.file.descriptor
            if keepOwners, fchown(fd, info.uid, info.gid) != 0 { throw WispError.posix("fchown", target, errno: errno) }
            // After chown, which clears setuid/setgid bits.
            guard fchmod(fd, mode_t(info.permissions)) == 0 else { throw WispError.posix("fchmod", target, errno: errno) }
            var times = [timespec(tv_sec: time_t(info.accessTime.seconds), tv_nsec: Int(info.accessTime.nanoseconds)),
                         timespec(tv_sec: time_t(info.modificationTime.seconds), tv_nsec: Int(info.modificationTime.nanoseconds))]
            guard futimens(fd, &times) == 0 else { throw WispError.posix("futimens", target, errno: errno) }
            try output.commit()
        } catch {
            output.discard()
            throw error
        }
    }

    func applyMetadata(_ info: FileStat, to path: String, isSymlink: Bool) throws {
        if keepOwners, fchownat(AT_FDCWD, path, info.uid, info.gid, isSymlink ? AT_SYMLINK_NOFOLLOW : 0) != 0 {
            throw WispError.posix("chown", path, errno: errno)
        }
        if !isSymlink, chmod(path, mode_t(info.permissions)) != 0 {
            throw WispError.posix("chmod", path, errno: errno)
        }
        var times = [timespec(tv_sec: time_t(info.accessTime.seconds), tv_nsec: Int(info.accessTime.nanoseconds)),
                     timespec(tv_sec: time_t(info.modificationTime.seconds), tv_nsec: Int(info.modificationTime.nanoseconds))]
        guard utimensat(AT_FDCWD, path, &times, isSymlink ? AT_SYMLINK_NOFOLLOW : 0) == 0 else {
            throw WispError.posix("utimensat", path, errno: errno)
        }
    }
}
