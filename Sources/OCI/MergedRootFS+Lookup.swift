import WispCore

/// What a name in the merged tree is, without its contents.
public enum RootFSEntryKind: Sendable, Equatable {
    case directory
    case regular(size: UInt64)
    case symlink(target: [UInt8])
    case special(RootFSSpecialFile)
}

extension MergedRootFS {
    /// Symlinks followed while resolving one path: Linux's limit (MAXSYMLINKS).
    static let maxSymlinkHops = 40

    /// The entry at `path` itself (a final symlink is not followed; symlinks in the middle
    /// are not followed either: use `resolve` for a path as the guest would see it).
    public func entry(at path: RootFSPath) -> RootFSEntryKind? {
        node(at: path.components).map { Self.kind($0.inode) }
    }

    /// The names in the directory at `path` (not following symlinks), sorted; nil when it
    /// is not a directory.
    public func childNames(of path: RootFSPath) -> [[UInt8]]? {
        guard let node = node(at: path.components), node.inode.isDirectory else { return nil }
        return node.children.keys.sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// `path` with every symlink followed as the guest would follow it with this tree as
    /// its root (absolute targets start at the root, `..` stops at the root); nil when a
    /// component is missing or more than 40 symlinks are met.
    public func resolve(_ path: RootFSPath) -> RootFSPath? {
        var pending = Array(path.components.reversed())
        var resolved: [[UInt8]] = []
        var hops = 0
        while let component = pending.popLast() {
            if component == [UInt8(ascii: ".")] { continue }
            if component == [UInt8(ascii: "."), UInt8(ascii: ".")] {
                _ = resolved.popLast()
                continue
            }
            guard let node = node(at: resolved + [component]) else { return nil }
            if case .symlink(let target) = node.inode.kind {
                hops += 1
                guard hops <= Self.maxSymlinkHops else { return nil }
                if target.first == UInt8(ascii: "/") { resolved = [] }
                pending += target.split(separator: UInt8(ascii: "/")).map(Array.init).reversed()
                continue
            }
            resolved.append(component)
        }
        return RootFSPath(components: resolved)
    }

    private func node(at components: [[UInt8]]) -> RootFSNode? {
        var node = tree.root
        for component in components {
            guard node.inode.isDirectory, let child = node.children[component] else { return nil }
            node = child
        }
        return node
    }

    private static func kind(_ inode: RootFSInode) -> RootFSEntryKind {
        switch inode.kind {
        case .directory: .directory
        case .regular(let size): .regular(size: size)
        case .symlink(let target): .symlink(target: target)
        case .special(let special): .special(special)
        }
    }
}
