import FileSystems
import WispCore

/// The guest's assembled directory tree: the root filesystem plus its fstab mounts. Guest
/// paths resolve across mounts, symlinks included (an absolute link on /boot pointing into
/// /usr/lib/modules on the root filesystem lands there), as the running guest would see them.
public final class MountView: Sendable {
    public struct Mount: Sendable {
        public var mountPoint: String
        public var fileSystem: any FileSystem
        /// Index into the inspector's filesystem list.
        public var fileSystemIndex: Int
        /// The directory of the filesystem that appears at the mount point: "/" usually, a
        /// subvolume's path for `subvol=` mounts (btrfs), with its inode.
        public var sourcePath: String
        public var sourceInode: UInt64

        public init(mountPoint: String, fileSystem: any FileSystem, fileSystemIndex: Int,
                    sourcePath: String = "/", sourceInode: UInt64? = nil) {
            self.mountPoint = mountPoint
            self.fileSystem = fileSystem
            self.fileSystemIndex = fileSystemIndex
            self.sourcePath = MountView.normalize(sourcePath)
            self.sourceInode = sourceInode ?? fileSystem.rootInode
        }
    }

    /// Where a guest path led: the mount it is on and the inode there.
    public struct Location: Sendable {
        public var guestPath: String
        public var mount: Mount
        public var inode: UInt64
    }

    public let mounts: [Mount]
    static let maxSymlinks = 40

    /// `mounts` must include "/"; later entries for the same mount point hide earlier ones.
    public init(mounts: [Mount]) throws {
        guard mounts.contains(where: { $0.mountPoint == "/" }) else {
            throw WispError.invalidArgument("a mount view needs a root filesystem")
        }
        var byPoint: [String: Mount] = [:]
        var order: [String] = []
        for m in mounts {
            let point = MountView.normalize(m.mountPoint)
            if byPoint[point] == nil { order.append(point) }
            var copy = m
            copy.mountPoint = point
            byPoint[point] = copy
        }
        self.mounts = order.compactMap { byPoint[$0] }
    }

    static func normalize(_ path: String) -> String {
        "/" + path.split(separator: "/").joined(separator: "/")
    }

    func mount(at components: [String]) -> Mount? {
        let path = "/" + components.joined(separator: "/")
        return mounts.first { $0.mountPoint == path }
    }

    /// The mount a canonical guest path lies on (longest mount-point prefix) and the path
    /// inside that filesystem.
    public func mountFor(canonical path: String) -> (Mount, String)? {
        var best: Mount?
        for m in mounts {
            let p = m.mountPoint
            if p == "/" || path == p || path.hasPrefix(p + "/") {
                if best == nil || p.count > (best?.mountPoint.count ?? 0) { best = m }
            }
        }
        guard let best else { return nil }
        let inner = best.mountPoint == "/" ? path : String(path.dropFirst(best.mountPoint.count))
        return (best, inner.isEmpty ? "/" : inner)
    }

    /// Resolves a guest path, following symlinks across mounts (at most 40, as Linux does).
    public func resolve(_ path: String, followFinalSymlink: Bool = true) throws -> Location {
        guard let root = mount(at: []) else { throw WispError.notFound("no root filesystem") }
        var remaining = path.split(separator: "/").map(String.init)
        // The walk so far: name, mount and inode of each component.
        var stack: [(name: String, mount: Mount, inode: UInt64)] = []
        var links = 0
        func current() -> (Mount, UInt64) {
            if let top = stack.last { return (top.mount, top.inode) }
            return (root, root.sourceInode)
        }
        while !remaining.isEmpty {
            let name = remaining.removeFirst()
            if name == "." || name.isEmpty { continue }
            if name == ".." { _ = stack.popLast(); continue }
            let names = stack.map(\.name) + [name]
            if let mounted = mount(at: names) {
                stack.append((name, mounted, mounted.sourceInode))
                continue
            }
            let (mount, dir) = current()
            let fs = mount.fileSystem
            let here = "/" + stack.map(\.name).joined(separator: "/")
            let dirStat = try fs.stat(inode: dir)
            guard dirStat.type == .directory else {
                throw WispError.notFound("\(path): \(here) is not a directory in the guest")
            }
            guard let entry = try fs.list(directory: dir).first(where: { $0.name == name }) else {
                throw WispError.notFound("\(path): \(MountView.normalize(here + "/" + name)) does not exist in the guest")
            }
            let type = try entry.type ?? fs.stat(inode: entry.inode).type
            if type == .symlink && (!remaining.isEmpty || followFinalSymlink) {
                links += 1
                guard links <= MountView.maxSymlinks else {
                    throw WispError(.failed, "\(path): too many levels of symbolic links in the guest")
                }
                let target = try fs.readlink(inode: entry.inode)
                guard !target.isEmpty else {
                    throw WispError.notFound("\(path): \(MountView.normalize(here + "/" + name)) is an empty symbolic link")
                }
                if target.hasPrefix("/") { stack.removeAll() }
                remaining = target.split(separator: "/").map(String.init) + remaining
                continue
            }
            stack.append((name, mount, entry.inode))
        }
        let (mount, inode) = current()
        return Location(guestPath: "/" + stack.map(\.name).joined(separator: "/"), mount: mount, inode: inode)
    }

    public func exists(_ path: String) -> Bool { (try? resolve(path)) != nil }

    /// Reads a whole regular file, refusing more than `limit` bytes.
    public func readFile(_ path: String, limit: UInt64) throws -> [UInt8] {
        let location = try resolve(path)
        return try MountView.read(location, limit: limit, path: path)
    }

    static func read(_ location: Location, limit: UInt64, path: String) throws -> [UInt8] {
        let fs = location.mount.fileSystem
        let info = try fs.stat(inode: location.inode)
        guard info.type == .regular else {
            throw WispError.invalidArgument("\(path): not a regular file in the guest (\(info.type.rawValue))")
        }
        guard info.size <= limit else {
            throw WispError.invalidArgument("\(path): \(info.size) bytes is more than the \(limit)-byte limit")
        }
        return try fs.read(inode: location.inode, offset: 0, count: Int(info.size))
    }

    public func list(_ path: String) throws -> [DirectoryEntry] {
        let location = try resolve(path)
        return try location.mount.fileSystem.list(directory: location.inode)
    }

    /// The guest path of `path` inside filesystem `index` (GRUB and BLS name files relative
    /// to a partition): the filesystem's mount point joined with the path, if it is mounted.
    public func guestPath(onFileSystem index: Int, path: String) -> String? {
        let normalized = MountView.normalize(path)
        // The mount whose source directory holds the path, the deepest source first.
        let candidates = mounts.filter { $0.fileSystemIndex == index }.sorted { $0.sourcePath.count > $1.sourcePath.count }
        for m in candidates {
            if m.sourcePath == "/" { return MountView.normalize(m.mountPoint + "/" + normalized) }
            if normalized == m.sourcePath || normalized.hasPrefix(m.sourcePath + "/") {
                return MountView.normalize(m.mountPoint + "/" + String(normalized.dropFirst(m.sourcePath.count)))
            }
        }
        return nil
    }

    /// The inode of a mount's source directory inside its filesystem (no symlinks followed
    /// outside it).
    static func sourceInode(of path: String, in fs: any FileSystem) throws -> UInt64 {
        let resolved = try fs.resolve(path)
        guard try fs.stat(inode: resolved.inode).type == .directory else {
            throw WispError.notFound("\(path): not a directory")
        }
        return resolved.inode
    }
}
