import WispCore

/// The resolved location of a path: the inode it names and its canonical absolute path.
public struct ResolvedPath: Sendable, Equatable {
    public var inode: UInt64
    public var path: String
}

extension FileSystem {
    /// Resolves `path` (absolute, or relative to the root) to an inode, following symlinks
    /// in intermediate components and, if `followFinalSymlink`, in the last one. Absolute
    /// link targets resolve inside this filesystem, never on the host; ".." stops at the
    /// root. At most 40 symlinks are followed, as Linux does.
    public func resolve(_ path: String, followFinalSymlink: Bool = true) throws -> ResolvedPath {
        var remaining = Self.components(path)
        var stack: [(name: String, inode: UInt64)] = []
        var linksFollowed = 0
        var current = rootInode
        while !remaining.isEmpty {
            let name = remaining.removeFirst()
            if name == "." { continue }
            if name == ".." {
                _ = stack.popLast()
                current = stack.last?.inode ?? rootInode
                continue
            }
            let dirStat = try stat(inode: current)
            guard dirStat.type == .directory else {
                throw WispError.notFound("\(Self.join(stack.map(\.name)))/\(name): \(Self.join(stack.map(\.name))) is not a directory")
            }
            guard let entry = try list(directory: current).first(where: { $0.name == name }) else {
                throw WispError.notFound("\(Self.join(stack.map(\.name) + [name])): no such file or directory")
            }
            let isLast = remaining.isEmpty
            let entryType = try entry.type ?? stat(inode: entry.inode).type
            if entryType == .symlink && (!isLast || followFinalSymlink) {
                linksFollowed += 1
                guard linksFollowed <= 40 else {
                    throw WispError(.failed, "\(path): too many levels of symbolic links")
                }
                let target = try readlink(inode: entry.inode)
                guard !target.isEmpty else {
                    throw WispError.notFound("\(Self.join(stack.map(\.name) + [name])): empty symbolic link")
                }
                if target.hasPrefix("/") {
                    stack.removeAll()
                    current = rootInode
                }
                remaining = Self.components(target) + remaining
                continue
            }
            stack.append((name, entry.inode))
            current = entry.inode
        }
        return ResolvedPath(inode: current, path: Self.join(stack.map(\.name)))
    }

    /// `stat` by path.
    public func stat(path: String, followFinalSymlink: Bool = true) throws -> FileStat {
        try stat(inode: resolve(path, followFinalSymlink: followFinalSymlink).inode)
    }

    /// A whole file's contents, refusing files larger than `limit` bytes (callers that can
    /// stream should read in ranges instead).
    public func readFile(_ path: String, limit: UInt64 = 256 << 20) throws -> [UInt8] {
        let inode = try resolve(path).inode
        let info = try stat(inode: inode)
        guard info.type == .regular else {
            throw WispError.invalidArgument("\(path): not a regular file")
        }
        guard info.size <= limit else {
            throw WispError.invalidArgument("\(path): \(info.size) bytes is larger than the \(limit)-byte limit for this read")
        }
        return try read(inode: inode, offset: 0, count: Int(info.size))
    }

    static func components(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    static func join(_ names: [String]) -> String {
        "/" + names.joined(separator: "/")
    }
}
