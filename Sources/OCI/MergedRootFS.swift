import WispCore

/// An image's layers applied in order, as metadata only (pass 1), then streamed into a
/// `RootFSSink` with contents read from the layers again (pass 2). Memory is bounded by
/// the number of names, never by file sizes.
///
///     let merged = try MergedRootFS.build(layers: image.layers)   // pass 1: headers, diff_ids
///     print(merged.summary.fileBytes)                              // size the filesystem
///     try merged.emit(into: &writer)                               // pass 2: contents
/// Immutable once built (pass 2 only reads the tree), so it may cross tasks.
public final class MergedRootFS: @unchecked Sendable {
    public let layers: [OCILayer]
    public let summary: RootFSSummary
    let limits: OCILayerLimits
    let tree: RootFSTree

    private init(layers: [OCILayer], limits: OCILayerLimits, tree: RootFSTree) {
        self.layers = layers
        self.limits = limits
        self.tree = tree
        summary = Self.summarise(tree)
    }

    /// Pass 1: reads every layer's headers (and all its bytes, to check its diff_id before
    /// anything of it is used) and applies the image-spec rules: `.wh.NAME` whiteouts and
    /// `.wh..wh..opq` opaque directories take effect before the layer's own entries,
    /// whatever their order in the tar; a directory over a directory merges, anything else
    /// replaces; hard links may name files of lower layers. Names outside the root (`..`,
    /// absolute) and writes through a symlink are refused.
    public static func build(layers: [OCILayer], limits: OCILayerLimits = OCILayerLimits()) throws -> MergedRootFS {
        var tree = RootFSTree()
        for (number, layer) in layers.enumerated() {
            try apply(layer, number: number, to: &tree, limits: limits)
        }
        return MergedRootFS(layers: layers, limits: limits, tree: tree)
    }

    static func source(_ layer: OCILayer, _ number: Int) -> String {
        "layer \(number + 1) (\(layer.descriptor.digest))"
    }

    private static func apply(_ layer: OCILayer, number: Int, to tree: inout RootFSTree, limits: OCILayerLimits) throws {
        let source = source(layer, number)
        let stream = try LayerStream(path: layer.path, compression: layer.compression,
                                     limit: limits.limit(compressedSize: UInt64(max(0, layer.descriptor.size))), source: source)
        let reader = try LayerTarReader(stream: stream)
        var entries: [(LayerTarEntry, [[UInt8]])] = []
        var whiteouts: [[[UInt8]]] = []
        var opaques: [[[UInt8]]] = []
        let prefix = Array(".wh.".utf8)
        let opaqueName = Array(".wh..wh..opq".utf8)
        while let entry = try reader.next() {
            let what = "entry \(entry.index + 1) (\(String(decoding: entry.path, as: UTF8.self)))"
            let components = try RootFSTree.components(entry.path, source: source, what: what)
            if let name = components.last, name.starts(with: prefix) {
                let directory = Array(components.dropLast())
                if name == opaqueName {
                    opaques.append(directory)
                } else if name.starts(with: prefix + prefix) {
                    continue  // other aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content
                } else {
                    let hidden = Array(name.dropFirst(prefix.count))
                    guard !hidden.isEmpty else { throw WispError.corrupt(source, what, "whiteout names nothing") }
                    whiteouts.append(directory + [hidden])
                }
                continue
            }
            entries.append((entry, components))
            guard entries.count + whiteouts.count + opaques.count <= RootFSTree.maxNames else {
                throw WispError.corrupt(source, "layer tar", "more than \(RootFSTree.maxNames) entries")
            }
        }
        let seen = try stream.finishDigest()
        guard seen == layer.diffID else {
            throw WispError(.digestMismatch, "\(source): uncompressed layer expected \(layer.diffID) (the config's diff_id), got \(seen)")
        }
        for directory in opaques {
            try tree.opaque(directory, source: source, what: "opaque whiteout in \(RootFSPath(components: directory))")
        }
        for path in whiteouts {
            try tree.whiteout(path, source: source, what: "whiteout of \(RootFSPath(components: path))")
        }
        for (entry, components) in entries {
            let what = "entry \(entry.index + 1) (\(String(decoding: entry.path, as: UTF8.self)))"
            let kind: RootFSInode.Kind
            switch entry.kind {
            case .hardLink:
                let target = try RootFSTree.components(entry.linkTarget, source: source, what: "\(what) hard link target")
                try tree.link(components, to: target, source: source, what: what)
                continue
            case .directory: kind = .directory
            case .regular: kind = .regular(size: entry.size)
            case .symlink: kind = .symlink(target: entry.linkTarget)
            case .special(let special): kind = .special(special)
            }
            let inode = RootFSInode(kind: kind, metadata: entry.metadata,
                                    contentSource: entry.kind == .regular ? (number, entry.index) : nil)
            try tree.put(components, inode: inode, source: source, what: what)
        }
    }

    /// The tree's names in emission order: directories first (pre-order, children sorted
    /// by name), then every other name in the same walk.
    private struct Walk {
        var directories: [(RootFSPath, RootFSNode)] = []
        var others: [(RootFSPath, RootFSNode)] = []
    }

    private static func walk(_ tree: RootFSTree) -> Walk {
        var walk = Walk()
        var stack: [([[UInt8]], RootFSNode)] = [([], tree.root)]
        while let (components, node) = stack.popLast() {
            let path = RootFSPath(components: components)
            if node.inode.isDirectory {
                walk.directories.append((path, node))
                for name in node.children.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }).reversed() {
                    if let child = node.children[name] { stack.append((components + [name], child)) }
                }
            } else {
                walk.others.append((path, node))
            }
        }
        return walk
    }

    private static func summarise(_ tree: RootFSTree) -> RootFSSummary {
        var summary = RootFSSummary()
        var seen = Set<ObjectIdentifier>()
        let walk = walk(tree)
        for (_, node) in walk.directories {
            summary.directories += 1
            summary.metadataBytes += xattrBytes(node.inode.metadata)
        }
        for (_, node) in walk.others {
            guard seen.insert(ObjectIdentifier(node.inode)).inserted else {
                summary.hardLinks += 1
                continue
            }
            summary.metadataBytes += xattrBytes(node.inode.metadata)
            switch node.inode.kind {
            case .regular(let size):
                summary.regularFiles += 1
                summary.fileBytes += size
            case .symlink(let target):
                summary.symlinks += 1
                summary.metadataBytes += UInt64(target.count)
            case .special: summary.specialFiles += 1
            case .directory: break
            }
        }
        return summary
    }

    private static func xattrBytes(_ metadata: RootFSMetadata) -> UInt64 {
        metadata.xattrs.reduce(0) { $0 + UInt64($1.name.utf8.count + $1.value.count) }
    }

    /// Pass 2: the merged tree into `sink`, in the order `RootFSSink` describes.
    public func emit<Sink: RootFSSink>(into sink: inout Sink) throws {
        let walk = Self.walk(tree)
        for (path, node) in walk.directories {
            try sink.directory(path, metadata: node.inode.metadata)
        }
        // The first name of each inode in the walk is its primary; later ones are links.
        var primary: [ObjectIdentifier: RootFSPath] = [:]
        var names: [ObjectIdentifier: Int] = [:]
        for (_, node) in walk.others { names[ObjectIdentifier(node.inode), default: 0] += 1 }
        var links: [(RootFSPath, RootFSPath)] = []
        var sources: [[Int: (RootFSPath, RootFSInode)]] = Array(repeating: [:], count: layers.count)
        var rest: [(RootFSPath, RootFSInode)] = []
        for (path, node) in walk.others {
            let id = ObjectIdentifier(node.inode)
            if let first = primary[id] {
                links.append((path, first))
                continue
            }
            primary[id] = path
            if case .regular = node.inode.kind, let source = node.inode.contentSource, source.layer < layers.count {
                sources[source.layer][source.entry] = (path, node.inode)
            } else {
                rest.append((path, node.inode))
            }
        }
        for (number, wanted) in sources.enumerated() where !wanted.isEmpty {
            try emitFiles(of: number, wanted, names: names, into: &sink)
        }
        for (path, inode) in rest {
            switch inode.kind {
            case .symlink(let target):
                try sink.symlink(path, target: target, metadata: inode.metadata, links: names[ObjectIdentifier(inode)] ?? 1)
            case .special(let kind):
                try sink.special(path, kind: kind, metadata: inode.metadata, links: names[ObjectIdentifier(inode)] ?? 1)
            case .regular, .directory: break
            }
        }
        for (path, target) in links {
            try sink.hardLink(path, target: target)
        }
    }

    private func emitFiles<Sink: RootFSSink>(of number: Int, _ wanted: [Int: (RootFSPath, RootFSInode)],
                                             names: [ObjectIdentifier: Int], into sink: inout Sink) throws {
        let layer = layers[number]
        let stream = try LayerStream(path: layer.path, compression: layer.compression,
                                     limit: limits.limit(compressedSize: UInt64(max(0, layer.descriptor.size))),
                                     source: Self.source(layer, number))
        let reader = try LayerTarReader(stream: stream)
        var remaining = wanted.count
        while remaining > 0, let entry = try reader.next() {
            guard let (path, inode) = wanted[entry.index], case .regular(let size) = inode.kind else { continue }
            let contents = RootFSFileContents(reader: reader, size: size)
            defer { contents.valid = false }
            try sink.file(path, metadata: inode.metadata, size: size, links: names[ObjectIdentifier(inode)] ?? 1, contents: contents)
            remaining -= 1
        }
        guard remaining == 0 else {
            throw WispError.corrupt(Self.source(layer, number), "layer tar", "ended before the \(remaining) file(s) pass 1 found in it")
        }
    }
}
