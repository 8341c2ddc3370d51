import FileSystems
import WispCore

/// The guest's tree (its root filesystem with every fstab mount Wisp can read on top) as one
/// `FileSystem`, so anything that walks a filesystem (`wisp fs ls|cat|get`) sees what the
/// running guest sees: /boot is the /boot partition, /boot/efi the ESP, /home a btrfs
/// subvolume, and paths and symlinks resolve across mounts (FileSystem+Paths's walk keeps
/// the guest path, so ".." out of a mount returns to the directory it is mounted on).
///
/// Inode numbers carry the mount's index in their top 8 bits and the filesystem's own
/// number below, so they are unique across mounts (two mounts of one filesystem, as btrfs
/// subvolume mounts are, keep distinct numbers too). A mount point is listed as the root
/// of the filesystem mounted there, as `ls` shows it in the guest.
public final class GuestFileSystem: FileSystem {
    public let view: MountView
    let diskName: String
    let rootTag: Int
    /// The directories holding mount points, by (mount tag, inode): name → mount tag.
    let mountsBelow: [Key: [String: Int]]
    /// Mount-point directories whose filesystem Wisp cannot read, with the reason.
    let unreadableBelow: [Key: String]

    struct Key: Hashable {
        var tag: Int
        var inode: UInt64
    }

    static let tagShift: UInt64 = 56
    static let innerMask: UInt64 = (1 << tagShift) - 1
    static let maxMounts = 1 << (64 - Int(tagShift))

    /// `unreadableMounts`: guest mount points whose filesystem Wisp cannot read, with why;
    /// listing one is an error saying so rather than the empty directory beneath.
    public init(view: MountView, diskName: String, unreadableMounts: [String: String] = [:]) throws {
        guard view.mounts.count <= Self.maxMounts else {
            throw WispError.unsupported(diskName, "the guest mounts \(view.mounts.count) filesystems; a guest tree holds at most \(Self.maxMounts)")
        }
        guard let rootTag = view.mounts.firstIndex(where: { $0.mountPoint == "/" }) else {
            throw WispError.invalidArgument("\(diskName): a guest tree needs a root filesystem")
        }
        for mount in view.mounts where mount.sourceInode & ~Self.innerMask != 0 {
            throw WispError.unsupported(diskName, "the root inode \(mount.sourceInode) of the filesystem mounted at \(mount.mountPoint) is too large for the guest tree (at most 56 bits)")
        }
        self.view = view
        self.diskName = diskName
        self.rootTag = rootTag
        // Where each mount point's parent directory is in the guest, found through the view
        // itself (so a mount below another mount hangs off that mount's directory).
        func tag(of location: MountView.Location) -> Int? {
            view.mounts.firstIndex { $0.mountPoint == location.mount.mountPoint }
        }
        func parentKey(_ path: String) -> (Key, String)? {
            let components = path.split(separator: "/").map(String.init)
            guard let name = components.last,
                  let parent = try? view.resolve("/" + components.dropLast().joined(separator: "/")),
                  let parentTag = tag(of: parent) else { return nil }
            return (Key(tag: parentTag, inode: parent.inode), name)
        }
        var below: [Key: [String: Int]] = [:]
        for (index, mount) in view.mounts.enumerated() where mount.mountPoint != "/" {
            guard let (key, name) = parentKey(mount.mountPoint) else { continue }
            below[key, default: [:]][name] = index
        }
        var unreadable: [Key: String] = [:]
        for (point, reason) in unreadableMounts where point != "/" && view.mount(at: point.split(separator: "/").map(String.init)) == nil {
            guard let location = try? view.resolve(point), let locationTag = tag(of: location) else { continue }
            unreadable[Key(tag: locationTag, inode: location.inode)] = reason
        }
        mountsBelow = below
        unreadableBelow = unreadable
    }

    /// The tree `inspector` assembled.
    public convenience init(inspector: GuestInspector) throws {
        guard let view = inspector.view else {
            throw WispError.notFound("\(inspector.disk.name): no guest root")
        }
        try self.init(view: view, diskName: inspector.disk.name, unreadableMounts: inspector.unreadableMounts)
    }

    // MARK: inode numbers

    func encode(_ tag: Int, _ inode: UInt64) throws -> UInt64 {
        guard inode & ~Self.innerMask == 0 else {
            throw WispError.unsupported(diskName, "inode \(inode) on the filesystem mounted at \(view.mounts[tag].mountPoint) is too large for the guest tree (at most 56 bits); read that filesystem alone with --partition")
        }
        return UInt64(tag) << Self.tagShift | inode
    }

    func decode(_ inode: UInt64) throws -> (tag: Int, mount: MountView.Mount, inode: UInt64) {
        let tag = Int(inode >> Self.tagShift)
        guard tag < view.mounts.count else {
            throw WispError.notFound("\(diskName): inode \(inode) is not in the guest tree")
        }
        return (tag, view.mounts[tag], inode & Self.innerMask)
    }

    // MARK: FileSystem

    public var typeName: String { view.mounts[rootTag].fileSystem.typeName }
    public var label: String? { view.mounts[rootTag].fileSystem.label }
    public var uuid: String? { view.mounts[rootTag].fileSystem.uuid }
    public var rootInode: UInt64 { UInt64(rootTag) << Self.tagShift | view.mounts[rootTag].sourceInode }

    public func stat(inode: UInt64) throws -> FileStat {
        let (tag, mount, inner) = try decode(inode)
        var info = try mount.fileSystem.stat(inode: inner)
        info.inode = try encode(tag, inner)
        return info
    }

    public func list(directory inode: UInt64) throws -> [DirectoryEntry] {
        let (tag, mount, inner) = try decode(inode)
        let key = Key(tag: tag, inode: inner)
        if let reason = unreadableBelow[key] {
            throw WispError.unsupported(diskName, reason)
        }
        var entries = try mount.fileSystem.list(directory: inner).map { entry in
            DirectoryEntry(name: entry.name, inode: try encode(tag, entry.inode), type: entry.type)
        }
        guard let mounted = mountsBelow[key] else { return entries }
        // Mounted filesystems hide what is beneath them; a mount point missing from its
        // parent directory still appears, as MountView resolves it.
        entries.removeAll { mounted[$0.name] != nil }
        for (name, mountTag) in mounted.sorted(by: { $0.key < $1.key }) {
            entries.append(DirectoryEntry(name: name, inode: try encode(mountTag, view.mounts[mountTag].sourceInode),
                                          type: .directory))
        }
        return entries
    }

    public func read(inode: UInt64, offset: UInt64, count: Int) throws -> [UInt8] {
        let (_, mount, inner) = try decode(inode)
        return try mount.fileSystem.read(inode: inner, offset: offset, count: count)
    }

    public func readlink(inode: UInt64) throws -> String {
        let (_, mount, inner) = try decode(inode)
        return try mount.fileSystem.readlink(inode: inner)
    }

    public func xattrs(inode: UInt64) throws -> [String: [UInt8]] {
        let (_, mount, inner) = try decode(inode)
        return try mount.fileSystem.xattrs(inode: inner)
    }
}
