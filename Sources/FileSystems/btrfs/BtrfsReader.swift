import WispCore

/// Reads a btrfs filesystem from any `BlockDevice`: superblock (with mirrors), chunk tree
/// (single, dup, raid0/1/10/1c3/1c4 on one device), root tree, subvolumes and fs trees,
/// inline/regular/prealloc extents with zlib, lzo and zstd compression, symlinks and
/// xattrs. Every tree block's crc32c, address, fsid and level are verified. Read-only.
///
/// Inode numbers: a btrfs objectid is only unique inside one subvolume, so the reader's
/// inode numbers pack a subvolume slot into the top 16 bits and the objectid into the low
/// 48. Slot 0 is the selected subvolume (its inodes equal their objectids); nested
/// subvolumes met while listing get slots 1, 2, ... in the order they are first seen.
public final class BtrfsReader: FileSystem {
    public let device: any BlockDevice
    let sb: BtrfsSuperblock
    let source: String
    let trees: BtrfsTrees
    let rootTree: BtrfsTreeRoot
    /// The subvolume presented as "/".
    public var subvolumeID: UInt64 { slots.withLock { $0.first ?? Self.topLevel } }

    public var typeName: String { "btrfs" }
    public var label: String? { sb.label.isEmpty ? nil : sb.label }
    public var uuid: String? { sb.uuidString }
    public var rootInode: UInt64 { rootDirectory.withLock { $0 } }
    private let rootDirectory = LockedValue<UInt64>(256)

    static let objectIDLimit: UInt64 = 1 << 48
    static let maxSlots = 1 << 16

    let slots = LockedValue<[UInt64]>([])
    let subvolumeRoots = LockedValue<[UInt64: BtrfsTreeRoot]>([:])
    let inodeCache = SharedLRUCache<UInt64, BtrfsInode>(capacity: 4096)
    let listingCache = SharedLRUCache<UInt64, [DirectoryEntry]>(capacity: 64)
    let extentCache = SharedLRUCache<UInt64, [UInt8]>(capacity: 16)

    public init(device: any BlockDevice, subvolume: BtrfsSubvolumeSelector = .default) throws {
        self.device = device
        source = device.name
        sb = try BtrfsSuperblock.best(on: device)
        if sb.numDevices != 1 {
            throw WispError.unsupported(source, "btrfs filesystem spans \(sb.numDevices) devices; only single-device filesystems are supported")
        }
        trees = try BtrfsTrees.load(device: device, sb: sb, cache: SharedLRUCache(capacity: 512))
        rootTree = BtrfsTreeRoot(bytenr: sb.rootTree, level: sb.rootLevel)
        let id = try resolve(subvolume)
        let root = try subvolumeRoot(id)
        rootDirectory.withLock { $0 = root.rootDirID }
        slots.withLock { $0 = [id] }
        // Fail now, not at first use, when the selected subvolume's tree is unreadable.
        _ = try stat(inode: root.rootDirID)
    }

    // MARK: Inode numbers

    /// The reader inode number of `objectID` in subvolume `id`.
    func pack(subvolume id: UInt64, _ objectID: UInt64) throws -> UInt64 {
        guard objectID < Self.objectIDLimit else {
            throw WispError.unsupported(source, "btrfs objectid \(objectID) in subvolume \(id) does not fit the 48-bit inode space")
        }
        let slot = try slots.withLock { s -> Int in
            if let index = s.firstIndex(of: id) { return index }
            guard s.count < Self.maxSlots else {
                throw WispError.unsupported(source, "more than \(Self.maxSlots) btrfs subvolumes visited")
            }
            s.append(id)
            return s.count - 1
        }
        return UInt64(slot) << 48 | objectID
    }

    /// (subvolume id, its tree, objectid) of a reader inode number.
    func unpack(_ inode: UInt64) throws -> (subvolume: UInt64, root: BtrfsTreeRoot, objectID: UInt64) {
        let slot = Int(inode >> 48)
        guard let id = slots.withLock({ slot < $0.count ? $0[slot] : nil }) else {
            throw WispError.notFound("\(source): btrfs inode \(inode) names no known subvolume")
        }
        return (id, try subvolumeRoot(id), inode & (Self.objectIDLimit - 1))
    }

    func items(of inode: UInt64, type: UInt8, from: UInt64 = 0, through: UInt64 = .max) throws -> [(key: BtrfsKey, data: ByteReader)] {
        let (_, root, objectID) = try unpack(inode)
        return try trees.items(in: root, from: BtrfsKey(objectID: objectID, type: type, offset: from),
                               through: BtrfsKey(objectID: objectID, type: type, offset: through))
    }

    func inodeItem(_ inode: UInt64) throws -> BtrfsInode {
        if let cached = inodeCache[inode] { return cached }
        let (id, _, objectID) = try unpack(inode)
        guard let (_, item) = try items(of: inode, type: BtrfsKey.inodeItem).first else {
            throw WispError.notFound("\(source): btrfs inode \(objectID) does not exist in subvolume \(id)")
        }
        let parsed = try BtrfsInode.parse(item)
        inodeCache.insert(parsed, for: inode)
        return parsed
    }

    // MARK: FileSystem

    public func stat(inode: UInt64) throws -> FileStat {
        try inodeItem(inode).stat(inode: inode)
    }

    public func list(directory inode: UInt64) throws -> [DirectoryEntry] {
        if let cached = listingCache[inode] { return cached }
        guard try inodeItem(inode).mode & 0o170000 == 0o040000 else {
            throw WispError.invalidArgument("\(source): btrfs inode \(inode) is not a directory")
        }
        let (id, _, _) = try unpack(inode)
        var entries: [DirectoryEntry] = []
        for (_, item) in try items(of: inode, type: BtrfsKey.dirIndex) {
            for entry in try BtrfsDirEntry.parseAll(item) {
                let name = String(decoding: entry.name, as: UTF8.self)
                switch entry.location.type {
                case BtrfsKey.inodeItem:
                    entries.append(DirectoryEntry(name: name, inode: try pack(subvolume: id, entry.location.objectID), type: entry.fileType))
                case BtrfsKey.rootItem:
                    // A nested subvolume shows as a directory: the root directory of its tree.
                    let child = entry.location.objectID
                    let root = try subvolumeRoot(child)
                    entries.append(DirectoryEntry(name: name, inode: try pack(subvolume: child, root.rootDirID), type: .directory))
                default:
                    throw item.error(at: 0, "directory entry \(name) points at key type \(entry.location.type)")
                }
            }
        }
        if entries.count <= 10000 { listingCache.insert(entries, for: inode) }
        return entries
    }

    public func readlink(inode: UInt64) throws -> String {
        let node = try inodeItem(inode)
        guard node.mode & 0o170000 == 0o120000 else {
            throw WispError.invalidArgument("\(source): btrfs inode \(inode) is not a symbolic link")
        }
        guard node.size > 0, node.size < 4096 else {
            throw WispError.corrupt(source, "btrfs symlink inode \(inode)", "target length \(node.size) is outside 1...4095")
        }
        let target = try readData(inode: inode, size: node.size, offset: 0, count: Int(node.size))
        return String(decoding: target, as: UTF8.self)
    }

    public func read(inode: UInt64, offset: UInt64, count: Int) throws -> [UInt8] {
        let node = try inodeItem(inode)
        guard node.mode & 0o170000 == 0o100000 else {
            throw WispError.invalidArgument("\(source): btrfs inode \(inode) is not a regular file")
        }
        let size = try node.checkedSize(inode: inode, source: source)
        guard count > 0, offset < size else { return [] }
        return try readData(inode: inode, size: size, offset: offset, count: Int(min(UInt64(count), size - offset)))
    }

    public func xattrs(inode: UInt64) throws -> [String: [UInt8]] {
        var result: [String: [UInt8]] = [:]
        for (_, item) in try items(of: inode, type: BtrfsKey.xattrItem) {
            for entry in try BtrfsDirEntry.parseAll(item) {
                result[String(decoding: entry.name, as: UTF8.self)] = entry.data
            }
        }
        return result
    }
}
