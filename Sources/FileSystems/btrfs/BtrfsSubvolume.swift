import WispCore

/// Which subvolume a `BtrfsReader` presents as its root, as the kernel's mount options
/// choose it.
public enum BtrfsSubvolumeSelector: Sendable, Equatable {
    /// The default subvolume (`btrfs subvolume set-default`), else the top level (5).
    case `default`
    /// `subvolid=N`.
    case id(UInt64)
    /// `subvol=NAME`: a path from the top level, like "root" or "@/boot".
    case path(String)

    /// The selector a mount option string asks for ("rw,subvol=root,compress=zstd:1").
    /// As in the kernel, `subvolid=` wins over `subvol=` and `subvolid=0` means the default.
    public static func options(_ mountOptions: String) -> BtrfsSubvolumeSelector {
        var id: UInt64?
        var path: String?
        for option in mountOptions.split(separator: ",") {
            let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            switch parts[0].trimmingCharactersWhitespace() {
            case "subvolid": id = UInt64(parts[1].trimmingCharactersWhitespace())
            case "subvol": path = parts[1].trimmingCharactersWhitespace()
            default: continue
            }
        }
        if let id, id != 0 { return .id(id) }
        if let path { return .path(path) }
        return .default
    }
}

/// One subvolume as `btrfs subvolume list` shows it: its id, its path from the top level
/// (no leading slash) and the id of the subvolume holding it.
public struct BtrfsSubvolumeInfo: Sendable, Codable, Equatable {
    public var id: UInt64
    public var path: String
    public var parentID: UInt64

    public init(id: UInt64, path: String, parentID: UInt64) {
        self.id = id
        self.path = path
        self.parentID = parentID
    }
}

extension String {
    func trimmingCharactersWhitespace() -> String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}

extension BtrfsReader {
    static let topLevel: UInt64 = 5
    static let rootTreeDirectory: UInt64 = 6

    /// The tree root of a subvolume from its ROOT_ITEM in the root tree (the last one, as
    /// snapshots' items carry a transid offset).
    func subvolumeRoot(_ id: UInt64) throws -> BtrfsTreeRoot {
        if let cached = subvolumeRoots.withLock({ $0[id] }) { return cached }
        let found = try trees.items(in: rootTree, from: BtrfsKey(objectID: id, type: BtrfsKey.rootItem, offset: 0),
                                    through: BtrfsKey(objectID: id, type: BtrfsKey.rootItem, offset: .max))
        guard let (_, item) = found.last else { throw WispError.notFound("\(source): btrfs subvolume \(id) does not exist") }
        guard item.count >= 239 else { throw item.error(at: 0, "root item of \(item.count) bytes, expected at least 239") }
        let level = try item.u8(238)
        guard level <= BtrfsTrees.maxLevel else { throw item.error(at: 238, "level \(level) exceeds \(BtrfsTrees.maxLevel)") }
        let root = BtrfsTreeRoot(bytenr: try item.u64le(176), level: level, rootDirID: try item.u64le(168))
        guard root.rootDirID < BtrfsReader.objectIDLimit else { throw item.error(at: 168, "root directory id \(root.rootDirID) out of range") }
        subvolumeRoots.withLock { if $0.count < 4096 { $0[id] = root } }
        return root
    }

    /// The default subvolume: the "default" entry of the root tree directory, else 5.
    func defaultSubvolume() throws -> UInt64 {
        let items = try trees.items(in: rootTree, from: BtrfsKey(objectID: Self.rootTreeDirectory, type: BtrfsKey.dirItem, offset: 0),
                                    through: BtrfsKey(objectID: Self.rootTreeDirectory, type: BtrfsKey.dirItem, offset: .max))
        for (_, item) in items {
            for entry in try BtrfsDirEntry.parseAll(item) where entry.name == Array("default".utf8) {
                return entry.location.objectID == 0 ? Self.topLevel : entry.location.objectID
            }
        }
        return Self.topLevel
    }

    /// Every subvolume but the top level, with paths, from ROOT_BACKREF items.
    public func subvolumes() throws -> [BtrfsSubvolumeInfo] {
        let backrefs = try trees.items(in: rootTree, from: BtrfsKey(objectID: 0, type: 0, offset: 0),
                                       through: BtrfsKey(objectID: .max, type: .max, offset: .max))
            .filter { $0.key.type == BtrfsKey.rootBackref }
        var parents: [UInt64: (parent: UInt64, dirID: UInt64, name: String)] = [:]
        for (key, item) in backrefs where parents[key.objectID] == nil {
            let nameLength = Int(try item.u16le(16))
            parents[key.objectID] = (key.offset, try item.u64le(0),
                                     String(decoding: try item.array(18, nameLength), as: UTF8.self))
        }
        var paths: [UInt64: String] = [Self.topLevel: ""]
        func path(of id: UInt64, depth: Int) throws -> String {
            if let known = paths[id] { return known }
            guard depth < 256, let ref = parents[id] else {
                throw WispError.corrupt(source, "btrfs root tree", "subvolume \(id) has no path to the top level")
            }
            let parentPath = try path(of: ref.parent, depth: depth + 1)
            let inside = try directoryPath(ref.dirID, in: ref.parent)
            let full = [parentPath, inside, ref.name].filter { !$0.isEmpty }.joined(separator: "/")
            paths[id] = full
            return full
        }
        return try parents.keys.sorted().map { id in
            BtrfsSubvolumeInfo(id: id, path: try path(of: id, depth: 0), parentID: parents[id]?.parent ?? 0)
        }
    }

    /// The path of directory `objectID` inside subvolume `id`, from INODE_REF items.
    func directoryPath(_ objectID: UInt64, in id: UInt64) throws -> String {
        let root = try subvolumeRoot(id)
        var names: [String] = []
        var current = objectID
        while current != root.rootDirID {
            guard names.count < 4096 else { throw WispError.corrupt(source, "btrfs subvolume \(id)", "directory \(objectID) is nested too deep") }
            let refs = try trees.items(in: root, from: BtrfsKey(objectID: current, type: BtrfsKey.inodeRef, offset: 0),
                                       through: BtrfsKey(objectID: current, type: BtrfsKey.inodeRef, offset: .max))
            guard let (key, item) = refs.first, key.offset != current else {
                throw WispError.corrupt(source, "btrfs subvolume \(id)", "directory \(current) has no parent reference")
            }
            let nameLength = Int(try item.u16le(8))
            names.append(String(decoding: try item.array(10, nameLength), as: UTF8.self))
            current = key.offset
        }
        return names.reversed().joined(separator: "/")
    }

    /// The subvolume id a selector names.
    func resolve(_ selector: BtrfsSubvolumeSelector) throws -> UInt64 {
        switch selector {
        case .default: return try defaultSubvolume()
        case .id(let id): return id
        case .path(let raw):
            let wanted = raw.split(separator: "/").filter { $0 != "." && !$0.isEmpty }.joined(separator: "/")
            if wanted.isEmpty { return Self.topLevel }
            guard let match = try subvolumes().first(where: { $0.path == wanted }) else {
                throw WispError.notFound("\(source): no btrfs subvolume at path \(raw)")
            }
            return match.id
        }
    }
}
