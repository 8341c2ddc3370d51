import WispCore

/// One file, directory or symlink of the tree being written, with its names and places in
/// both hierarchies. Lives only while one image is laid out.
final class ISONode {
    enum Kind { case file([UInt8]), directory, symlink(String) }

    let name: String
    let kind: Kind
    let permissions: UInt32
    let depth: Int
    weak var parent: ISONode?
    var children: [ISONode] = []
    var isoChildren: [ISONode] = []
    var jolietChildren: [ISONode] = []
    var isoIdentifier: [UInt8] = [0]
    var jolietIdentifier: [UInt8] = [0]
    var isoDirectoryNumber = 0
    var jolietDirectoryNumber = 0
    var isoExtent = 0
    var isoExtentBytes = 0
    var jolietExtent = 0
    var jolietExtentBytes = 0
    var dataExtent = 0
    /// The records of this directory's primary extent ("." and ".." first).
    var isoRecords: [ISORecord] = []

    init(name: String, kind: Kind, permissions: UInt32, depth: Int, parent: ISONode?) {
        self.name = name
        self.kind = kind
        self.permissions = permissions
        self.depth = depth
        self.parent = parent
    }

    var isDirectory: Bool { if case .directory = kind { return true } else { return false } }

    var dataSize: Int {
        switch kind {
        case .file(let bytes): return bytes.count
        case .directory, .symlink: return 0
        }
    }
}

/// A directory record of the primary hierarchy and its System Use entries; the part that
/// does not fit in the record goes to a continuation area that a CE entry points at.
final class ISORecord {
    enum Role { case current, parent, child }
    let role: Role
    let target: ISONode
    let identifier: [UInt8]
    var inlineSystemUse: [UInt8]
    var continuation: [UInt8]?
    var continuationSector = 0
    var continuationOffset = 0

    init(role: Role, target: ISONode, identifier: [UInt8], systemUse entries: [[UInt8]]) {
        self.role = role
        self.target = target
        self.identifier = identifier
        // 255 is the largest record; the name, its pad byte and an even-length pad come off.
        let fixed = 33 + identifier.count + (identifier.count % 2 == 0 ? 1 : 0)
        let available = 254 - fixed
        let total = entries.reduce(0) { $0 + $1.count }
        if total <= available {
            inlineSystemUse = entries.flatMap { $0 }
            continuation = nil
        } else {
            var inline: [UInt8] = []
            var index = 0
            while index < entries.count, inline.count + entries[index].count + 28 <= available {
                inline += entries[index]
                index += 1
            }
            inlineSystemUse = inline
            continuation = entries[index...].flatMap { $0 }
        }
    }

    var length: Int {
        var length = 33 + identifier.count + (identifier.count % 2 == 0 ? 1 : 0) + inlineSystemUse.count
        if continuation != nil { length += 28 }
        return length + (length % 2)
    }
}

/// Names, sizes and sector addresses for every structure of one image; then the bytes.
struct ISO9660Layout {
    static let sector = ISO9660Writer.sectorSize
    let writer: ISO9660Writer
    let root: ISONode
    let isoDirectories: [ISONode]
    let jolietDirectories: [ISONode]
    let files: [ISONode]
    var isoPathTableBytes = 0, jolietPathTableBytes = 0
    var isoLPathSector = 0, isoMPathSector = 0, jolietLPathSector = 0, jolietMPathSector = 0
    var totalSectors = 0
    var metadataSectors = 0
    var continuationRecords: [ISORecord] = []

    init(tree: WriterTree, writer: ISO9660Writer, source: String) throws {
        try tree.validate(source: source)
        guard writer.volumeID.utf8.count <= 32, writer.systemID.utf8.count <= 32,
              writer.applicationID.utf8.count <= 128 else {
            throw WispError.invalidArgument("\(source): volume id must be at most 32 bytes, system id 32, application id 128")
        }
        self.writer = writer
        root = ISONode(name: "", kind: .directory, permissions: 0o755, depth: 0, parent: nil)
        var files: [ISONode] = []
        try Self.build(tree.entries, into: root, files: &files, source: source, path: "")
        self.files = files
        // Path-table order: by level, then parent number, then name. Breadth-first with
        // children sorted by identifier produces exactly that.
        isoDirectories = Self.breadthFirst(root) { $0.isoChildren }
        jolietDirectories = writer.joliet ? Self.breadthFirst(root) { $0.jolietChildren } : []
        for (index, directory) in isoDirectories.enumerated() { directory.isoDirectoryNumber = index + 1 }
        for (index, directory) in jolietDirectories.enumerated() { directory.jolietDirectoryNumber = index + 1 }
        try assignSectors()
    }

    private static func build(_ entries: [WriterTree.Entry], into directory: ISONode, files: inout [ISONode],
                              source: String, path: String) throws {
        var isoTaken = Set<[UInt8]>(), jolietTaken = Set<[UInt8]>()
        for entry in entries {
            let kind: ISONode.Kind
            switch entry.content {
            case .file(let bytes):
                guard bytes.count <= ISO9660Writer.maximumFileSize else {
                    throw WispError.invalidArgument("\(source): \(path)/\(entry.name) is \(bytes.count) bytes; ISO 9660 extents hold at most \(ISO9660Writer.maximumFileSize)")
                }
                kind = .file(bytes)
            case .directory:
                guard directory.depth + 1 < ISO9660Writer.maximumDirectoryDepth else {
                    throw WispError.invalidArgument("\(source): \(path)/\(entry.name) would be directory level \(directory.depth + 2); ISO 9660 allows \(ISO9660Writer.maximumDirectoryDepth)")
                }
                kind = .directory
            case .symlink(let target):
                _ = try RockRidge.symlinkEntries(target, source: source, path: path + "/" + entry.name)
                kind = .symlink(target)
            }
            let node = ISONode(name: entry.name, kind: kind, permissions: entry.permissions & 0o7777,
                               depth: directory.depth + 1, parent: directory)
            node.isoIdentifier = ISONames.primary(entry.name, isDirectory: node.isDirectory, taken: &isoTaken)
            node.jolietIdentifier = ISONames.joliet(entry.name, isDirectory: node.isDirectory, taken: &jolietTaken)
            directory.children.append(node)
            switch entry.content {
            case .directory(let children):
                try build(children, into: node, files: &files, source: source, path: path + "/" + entry.name)
            case .file:
                files.append(node)
            case .symlink:
                break
            }
        }
        directory.isoChildren = directory.children.sorted { $0.isoIdentifier.lexicographicallyPrecedes($1.isoIdentifier) }
        // Joliet cannot express symlinks; like genisoimage, they appear only through Rock Ridge.
        directory.jolietChildren = directory.children
            .filter { if case .symlink = $0.kind { return false } else { return true } }
            .sorted { $0.jolietIdentifier.lexicographicallyPrecedes($1.jolietIdentifier) }
    }

    private static func breadthFirst(_ root: ISONode, children: (ISONode) -> [ISONode]) -> [ISONode] {
        var order = [root]
        var index = 0
        while index < order.count {
            order += children(order[index]).filter(\.isDirectory)
            index += 1
        }
        return order
    }

    private static func sectors(_ bytes: Int) -> Int { (bytes + sector - 1) / sector }

    private mutating func assignSectors() throws {
        var next = 16 + 1 + (writer.joliet ? 1 : 0) + 1
        isoPathTableBytes = pathTableBytes(isoDirectories) { $0.isoIdentifier }
        isoLPathSector = next; next += Self.sectors(isoPathTableBytes)
        isoMPathSector = next; next += Self.sectors(isoPathTableBytes)
        if writer.joliet {
            jolietPathTableBytes = pathTableBytes(jolietDirectories) { $0.jolietIdentifier }
            jolietLPathSector = next; next += Self.sectors(jolietPathTableBytes)
            jolietMPathSector = next; next += Self.sectors(jolietPathTableBytes)
        }
        let stamp = writer.timestamp
        for directory in isoDirectories {
            directory.isoRecords = makeRecords(directory, timestamp: stamp)
            directory.isoExtentBytes = Self.extentBytes(directory.isoRecords.map(\.length))
            directory.isoExtent = next
            next += directory.isoExtentBytes / Self.sector
        }
        for directory in jolietDirectories {
            let lengths = [34, 34] + directory.jolietChildren.map { Self.plainRecordLength($0.jolietIdentifier.count) }
            directory.jolietExtentBytes = Self.extentBytes(lengths)
            directory.jolietExtent = next
            next += directory.jolietExtentBytes / Self.sector
        }
        // Continuation areas, packed so that none crosses a sector boundary.
        var offset = 0
        var continuationSectors = 0
        for directory in isoDirectories {
            for record in directory.isoRecords {
                guard let continuation = record.continuation else { continue }
                if offset + continuation.count > Self.sector || continuationSectors == 0 {
                    continuationSectors += 1
                    offset = 0
                }
                record.continuationSector = next + continuationSectors - 1
                record.continuationOffset = offset
                offset += continuation.count
                continuationRecords.append(record)
            }
        }
        next += continuationSectors
        metadataSectors = next
        for file in files {
            let size = file.dataSize
            if size == 0 { continue }
            file.dataExtent = next
            let (sum, overflow) = next.addingReportingOverflow(Self.sectors(size))
            guard !overflow, sum <= Int(UInt32.max) else {
                throw WispError.invalidArgument("ISO image would exceed \(UInt32.max) sectors")
            }
            next = sum
        }
        totalSectors = next
    }

    private static func plainRecordLength(_ identifierCount: Int) -> Int {
        let length = 33 + identifierCount + (identifierCount % 2 == 0 ? 1 : 0)
        return length + length % 2
    }

    /// Records never straddle a sector: one that does not fit starts the next sector.
    private static func extentBytes(_ lengths: [Int]) -> Int {
        var sectors = 1, used = 0
        for length in lengths {
            if used + length > sector { sectors += 1; used = 0 }
            used += length
        }
        return sectors * sector
    }

    private func pathTableBytes(_ directories: [ISONode], identifier: (ISONode) -> [UInt8]) -> Int {
        directories.reduce(0) { total, directory in
            let count = identifier(directory).count
            return total + 8 + count + count % 2
        }
    }

    private func makeRecords(_ directory: ISONode, timestamp: Int64) -> [ISORecord] {
        let rr = writer.rockRidge
        let parent = directory.parent ?? directory
        var currentEntries: [[UInt8]] = []
        if rr {
            if directory === root { currentEntries.append(RockRidge.sharingProtocol) }
            currentEntries += RockRidge.attributes(for: directory, timestamp: timestamp, name: nil)
            if directory === root { currentEntries.append(RockRidge.extensionReference) }
        }
        var records = [
            ISORecord(role: .current, target: directory, identifier: [0], systemUse: currentEntries),
            ISORecord(role: .parent, target: parent, identifier: [1],
                      systemUse: rr ? RockRidge.attributes(for: parent, timestamp: timestamp, name: nil) : []),
        ]
        for child in directory.isoChildren {
            records.append(ISORecord(role: .child, target: child, identifier: child.isoIdentifier,
                                     systemUse: rr ? RockRidge.attributes(for: child, timestamp: timestamp, name: child.name) : []))
        }
        return records
    }
}
