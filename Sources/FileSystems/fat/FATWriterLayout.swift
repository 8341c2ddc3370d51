import WispCore

/// One file or directory of the tree being written, with its directory entries and clusters.
final class FATNode {
    let name: String
    let contents: [UInt8]?   // nil for directories
    let permissions: UInt32
    var children: [FATNode] = []
    var shortName: [UInt8] = []
    var longNameEntries: [[UInt8]] = []
    var firstCluster: UInt32 = 0
    var clusterCount: UInt32 = 0

    init(name: String, contents: [UInt8]?, permissions: UInt32) {
        self.name = name
        self.contents = contents
        self.permissions = permissions
    }

    var isDirectory: Bool { contents == nil }

    /// Directory entries this directory's own table holds ("." and ".." included).
    var entryCount: Int { 2 + children.reduce(0) { $0 + 1 + $1.longNameEntries.count } }
}

/// A run of bytes at an absolute offset of the image.
struct FATPiece {
    let offset: UInt64
    let bytes: [UInt8]
}

/// Names, geometry and cluster allocation of one FAT image, then its bytes as pieces.
struct FATLayout {
    let writer: FATWriter
    let root: FATNode
    let directories: [FATNode]   // breadth-first, root first
    let files: [FATNode]
    let geometry: FATGeometry
    let usedClusters: UInt32

    init(tree: WriterTree, writer: FATWriter, source: String) throws {
        try tree.validate(source: source)
        self.writer = writer
        _ = try Self.labelField(writer.label, source: source)
        if let size = writer.size, size > FATWriter.maximumSize {
            throw WispError.invalidArgument("\(source): \(size) bytes is larger than the \(FATWriter.maximumSize >> 30) GiB this FAT writer makes (its tables live in memory)")
        }
        let root = FATNode(name: "", contents: nil, permissions: 0o755)
        self.root = root
        try Self.build(tree.entries, into: root, source: source, path: "")
        var directories = [root]
        var index = 0
        while index < directories.count {
            directories += directories[index].children.filter(\.isDirectory)
            index += 1
        }
        self.directories = directories
        let files = directories.flatMap { $0.children.filter { !$0.isDirectory } }
        self.files = files

        let rootEntries = root.entryCount - 2 + 1  // no dot entries; one volume label
        func clustersNeeded(_ geometry: FATGeometry) -> UInt64 {
            let bytesPerCluster = UInt64(geometry.bytesPerCluster)
            var total: UInt64 = 0
            for directory in directories where directory !== root || geometry.type == .fat32 {
                let entries = directory === root ? rootEntries : directory.entryCount
                total += max(1, (UInt64(entries) * 32 + bytesPerCluster - 1) / bytesPerCluster)
            }
            for file in files {
                total += (UInt64(file.contents?.count ?? 0) + bytesPerCluster - 1) / bytesPerCluster
            }
            return total
        }
        func fits(_ geometry: FATGeometry) -> Bool {
            (geometry.type == .fat32 || rootEntries <= geometry.rootEntryCount)
                && clustersNeeded(geometry) <= geometry.clusterCount
        }
        for directory in directories where directory.entryCount > 65536 {
            throw WispError.invalidArgument("\(source): directory /\(directory.name) needs \(directory.entryCount) entries; FAT directories hold 65536")
        }

        var chosen: FATGeometry?
        if let size = writer.size {
            guard let geometry = FATGeometry.choose(totalBytes: size, forced: writer.fatType) else {
                throw WispError.invalidArgument("\(source): \(size) bytes cannot hold a \(writer.fatType?.rawValue.uppercased() ?? "FAT") filesystem (FAT12 needs under 4085 clusters, FAT16 4085-65524, FAT32 at least 65525)")
            }
            guard fits(geometry) else {
                throw WispError.invalidArgument("\(source): the files need \(clustersNeeded(geometry)) clusters of \(geometry.bytesPerCluster) bytes (root: \(rootEntries) entries) but a \(size)-byte \(geometry.type.rawValue.uppercased()) volume has \(geometry.clusterCount) (root: \(geometry.rootEntryCount))")
            }
            chosen = geometry
        } else {
            let payload = files.reduce(UInt64(0)) { $0 + UInt64($1.contents?.count ?? 0) }
            let step: UInt64 = 64 << 10
            var size = max(128 << 10, (payload + payload / 16 + (96 << 10) + step - 1) / step * step)
            for _ in 0..<200 {
                if let geometry = FATGeometry.choose(totalBytes: size, forced: writer.fatType), fits(geometry) {
                    chosen = geometry
                    break
                }
                size += max(step, size / 8 / step * step)
            }
        }
        guard let geometry = chosen else {
            throw WispError.invalidArgument("\(source): found no \(writer.fatType?.rawValue.uppercased() ?? "FAT") geometry that holds these files")
        }

        // Contiguous allocation from cluster 2: the FAT32 root first, then directories and
        // files in breadth-first order.
        var next: UInt32 = 2
        let bytesPerCluster = UInt64(geometry.bytesPerCluster)
        for directory in directories where directory !== root || geometry.type == .fat32 {
            let entries = directory === root ? rootEntries : directory.entryCount
            directory.clusterCount = UInt32(max(1, (UInt64(entries) * 32 + bytesPerCluster - 1) / bytesPerCluster))
            directory.firstCluster = next
            next += directory.clusterCount
        }
        for file in files {
            let count = UInt32((UInt64(file.contents?.count ?? 0) + bytesPerCluster - 1) / bytesPerCluster)
            file.clusterCount = count
            file.firstCluster = count == 0 ? 0 : next
            next += count
        }
        usedClusters = next - 2
        self.geometry = geometry
    }

    static func labelField(_ label: String, source: String) throws -> [UInt8] {
        let bytes = Array(label.uppercased().utf8)
        guard (1...11).contains(bytes.count), bytes.allSatisfy({ FATNames.isShortCharacter($0) || $0 == FATNames.space }) else {
            throw WispError.invalidArgument("\(source): volume label \"\(label)\" must be 1-11 characters of A-Z, 0-9 and !#$%&'()-@^_`{}~")
        }
        return bytes + [UInt8](repeating: FATNames.space, count: 11 - bytes.count)
    }

    private static func build(_ entries: [WriterTree.Entry], into directory: FATNode, source: String, path: String) throws {
        var upperNames = Set<String>()
        var taken = Set<[UInt8]>()
        var nodes: [FATNode] = []
        for entry in entries {
            let entryPath = path + "/" + entry.name
            try FATNames.checkLongName(entry.name, source: source, path: entryPath)
            guard upperNames.insert(entry.name.uppercased()).inserted else {
                throw WispError.invalidArgument("\(source): \(entryPath) differs from another name only in case, and FAT names ignore case")
            }
            let node: FATNode
            switch entry.content {
            case .file(let bytes):
                guard bytes.count <= Int(UInt32.max) else {
                    throw WispError.invalidArgument("\(source): \(entryPath) is \(bytes.count) bytes; FAT files hold at most 4 GiB - 1")
                }
                node = FATNode(name: entry.name, contents: bytes, permissions: entry.permissions)
            case .directory(let children):
                node = FATNode(name: entry.name, contents: nil, permissions: entry.permissions)
                try build(children, into: node, source: source, path: entryPath)
            case .symlink:
                throw WispError.unsupported(source, "\(entryPath) is a symlink, which FAT cannot store")
            }
            if let exact = FATNames.exactShortName(entry.name) {
                node.shortName = exact
                taken.insert(exact)
            }
            nodes.append(node)
        }
        // Aliases after exact names, so an exact "NAME~1" keeps its name.
        for node in nodes where node.shortName.isEmpty {
            node.shortName = FATNames.alias(node.name, taken: taken)
            taken.insert(node.shortName)
            node.longNameEntries = FATNames.longNameEntries(node.name, shortName: node.shortName)
        }
        directory.children = nodes
    }
}
