import WispCore

/// The merged tree being built in pass 1: names to inodes, no contents. An inode knows
/// which layer entry holds its data, so pass 2 can stream it from there.
final class RootFSInode {
    enum Kind {
        case directory
        case regular(size: UInt64)
        case symlink(target: [UInt8])
        case special(RootFSSpecialFile)
    }

    var kind: Kind
    var metadata: RootFSMetadata
    /// (layer, entry index) of the tar entry whose data this file has.
    var contentSource: (layer: Int, entry: Int)?

    init(kind: Kind, metadata: RootFSMetadata, contentSource: (layer: Int, entry: Int)?) {
        self.kind = kind
        self.metadata = metadata
        self.contentSource = contentSource
    }

    var isDirectory: Bool { if case .directory = kind { true } else { false } }
    var isSymlink: Bool { if case .symlink = kind { true } else { false } }
}

final class RootFSNode {
    let inode: RootFSInode
    /// Only for directories.
    var children: [[UInt8]: RootFSNode] = [:]

    init(inode: RootFSInode) { self.inode = inode }
}

/// The image-spec rules for applying one layer after another
/// (image-spec layer.md: changesets, whiteouts, opaque whiteouts).
struct RootFSTree {
    let root: RootFSNode
    private(set) var nameCount = 1
    static let maxNames = 4_000_000
    static let maxDepth = 512

    init() {
        root = RootFSNode(inode: RootFSInode(kind: .directory, metadata: .implicitDirectory, contentSource: nil))
    }

    /// Splits a tar name into components: `./` and empty parts dropped; absolute names
    /// and `..` refused (they would land outside the root).
    static func components(_ name: [UInt8], source: String, what: String) throws -> [[UInt8]] {
        // umoci names the root entry "/"; that one absolute name means the root itself.
        if !name.isEmpty, name.allSatisfy({ $0 == UInt8(ascii: "/") }) { return [] }
        guard name.first != UInt8(ascii: "/") else {
            throw WispError.corrupt(source, what, "absolute name \(String(decoding: name, as: UTF8.self)) is refused (it would land outside the root)")
        }
        var parts: [[UInt8]] = []
        for part in name.split(separator: UInt8(ascii: "/")) where part != [UInt8(ascii: ".")] {
            guard part != [UInt8(ascii: "."), UInt8(ascii: ".")] else {
                throw WispError.corrupt(source, what, "name \(String(decoding: name, as: UTF8.self)) has a .. component and is refused (it would land outside the root)")
            }
            guard part.count <= 255 else {
                throw WispError.corrupt(source, what, "a component of \(String(decoding: name, as: UTF8.self)) is longer than 255 bytes")
            }
            parts.append(Array(part))
        }
        guard parts.count <= maxDepth else { throw WispError.corrupt(source, what, "deeper than \(maxDepth) directories") }
        return parts
    }

    /// The directory that holds `components.last`, which must exist as a directory reached
    /// without passing through a symlink (creating missing parents when `create`).
    func parent(of components: [[UInt8]], create: Bool, source: String, what: String) throws -> RootFSNode? {
        var node = root
        for (depth, name) in components.dropLast().enumerated() {
            if let child = node.children[name] {
                if child.inode.isSymlink {
                    let at = RootFSPath(components: Array(components[0...depth]))
                    throw WispError.corrupt(source, what, "\(RootFSPath(components: components)) would be written through the symbolic link \(at), which is refused")
                }
                guard child.inode.isDirectory else {
                    let at = RootFSPath(components: Array(components[0...depth]))
                    throw WispError.corrupt(source, what, "\(RootFSPath(components: components)): its parent \(at) is not a directory")
                }
                node = child
            } else {
                guard create else { return nil }
                let made = RootFSNode(inode: RootFSInode(kind: .directory, metadata: .implicitDirectory, contentSource: nil))
                node.children[name] = made
                node = made
            }
        }
        return node
    }

    func lookup(_ components: [[UInt8]]) -> RootFSNode? {
        var node = root
        for name in components {
            guard let child = node.children[name] else { return nil }
            node = child
        }
        return node
    }

    private mutating func countNew() throws {
        nameCount += 1
        guard nameCount <= Self.maxNames else {
            throw WispError(.corrupt, "the image's layers hold more than \(Self.maxNames) names")
        }
    }

    /// `.wh.NAME`: removes NAME (and all below it) as the lower layers left it.
    mutating func whiteout(_ components: [[UInt8]], source: String, what: String) throws {
        guard let name = components.last,
              let parent = try parent(of: components, create: false, source: source, what: what) else { return }
        if let removed = parent.children.removeValue(forKey: name) { nameCount -= Self.count(removed) }
    }

    /// `.wh..wh..opq` in DIR: DIR keeps only what this layer puts in it.
    mutating func opaque(_ directory: [[UInt8]], source: String, what: String) throws {
        guard let node = directory.isEmpty ? root : lookup(directory) else { return }
        _ = try parent(of: directory, create: false, source: source, what: what)
        guard node.inode.isDirectory else { return }
        for child in node.children.values { nameCount -= Self.count(child) }
        node.children.removeAll()
    }

    /// Adds or replaces a name. A directory over a directory keeps its children (and takes
    /// the new metadata); anything else replaces what was there, a whole subtree included.
    mutating func put(_ components: [[UInt8]], inode: RootFSInode, source: String, what: String) throws {
        guard let name = components.last else {
            // The root itself ("./"): only a directory's metadata can apply.
            guard inode.isDirectory else {
                throw WispError.corrupt(source, what, "the root must be a directory")
            }
            root.inode.metadata = inode.metadata
            return
        }
        guard let parent = try parent(of: components, create: true, source: source, what: what) else { return }
        if let existing = parent.children[name] {
            if existing.inode.isDirectory && inode.isDirectory {
                existing.inode.metadata = inode.metadata
                return
            }
            nameCount -= Self.count(existing)
        }
        parent.children[name] = RootFSNode(inode: inode)
        try countNew()
    }

    /// A hard link: another name for the inode at `target`.
    mutating func link(_ components: [[UInt8]], to target: [[UInt8]], source: String, what: String) throws {
        guard let name = components.last else { throw WispError.corrupt(source, what, "a hard link cannot replace the root") }
        _ = try parent(of: target, create: false, source: source, what: what)
        guard let node = lookup(target) else {
            throw WispError.corrupt(source, what, "hard link target \(RootFSPath(components: target)) does not exist in this or a lower layer")
        }
        guard !node.inode.isDirectory else {
            throw WispError.corrupt(source, what, "hard link target \(RootFSPath(components: target)) is a directory")
        }
        guard let parent = try parent(of: components, create: true, source: source, what: what) else { return }
        if let existing = parent.children[name] {
            if existing.inode === node.inode { return }
            nameCount -= Self.count(existing)
        }
        parent.children[name] = RootFSNode(inode: node.inode)
        try countNew()
    }

    static func count(_ node: RootFSNode) -> Int {
        var total = 1
        var stack = [node]
        while let next = stack.popLast() {
            total += next.children.count
            stack += next.children.values
        }
        return total
    }
}
