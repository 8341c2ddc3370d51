import WispCore

/// Read-only ISO 9660 (ECMA-119) with Rock Ridge (RRIP: POSIX names, modes, owners, times,
/// symbolic links, device numbers, deep directories relocated through CL/PL/RE) and Joliet
/// (UCS-2 names), over any `BlockDevice`: installer and live ISOs, cloud-init seeds.
///
/// Which hierarchy is read: Rock Ridge on the primary volume when its root carries SUSP
/// (as Linux and xorriso prefer), else the Joliet supplementary volume, else plain ISO 9660
/// names without their ";1" versions.
///
/// Inode numbers: a directory is numbered by the byte offset of its extent (where its "."
/// record lies), a file by the byte offset of its (first) directory record. Both are
/// unique on the device and can be read back with no table in memory.
///
/// Hostile input: every extent is checked against the device, directories are bounded in
/// size, continuation areas and multi-extent chains in count, and a subdirectory is only
/// entered when its ".." (or, relocated, its PL) names the directory it was listed in, so
/// no chain of records can make a directory its own descendant.
public final class ISO9660Reader: FileSystem, @unchecked Sendable {
    public enum Hierarchy: String, Sendable, Codable { case rockRidge = "Rock Ridge", joliet = "Joliet", plain = "ISO 9660" }

    public static let sectorSize = 2048
    /// A directory larger than this (about 300,000 entries) is refused as hostile.
    static let maxDirectoryBytes: UInt64 = 32 << 20
    /// A multi-extent file of more parts than this (16 TiB at 4 GiB a part) is refused.
    static let maxExtentsPerFile = 4096

    public let device: any BlockDevice
    let descriptors: ISO9660VolumeDescriptors
    public let hierarchy: Hierarchy
    /// Bytes at the start of every System Use area that belong to other systems (SP's LEN_SKP).
    let systemUseSkip: Int
    /// Directory extent sector → its parent's, from the path table when it is sound (see
    /// `ISO9660PathTable`); nil means parents are read from ".." records instead.
    let pathTableParents: [UInt32: UInt32]?
    public let rootInode: UInt64
    /// Recent directory listings: inspection resolves many paths through the same few
    /// directories (the OS-root search lists "/" a dozen times), and an ISO's directories
    /// are re-parsed record by record otherwise. Only listings of up to 65,536 entries are
    /// kept, so a hostile image cannot make the cache large.
    private let listings = SharedLRUCache<UInt64, [DirectoryEntry]>(capacity: 8)
    public var typeName: String { "iso9660" }
    public var label: String? { volumeID.isEmpty ? nil : volumeID }
    /// As blkid and /dev/disk/by-uuid show it: the volume's modification date.
    public var uuid: String? { descriptors.primary.dateUUID }
    public var volumeID: String { descriptors.primary.volumeID }
    public var systemID: String { descriptors.primary.systemID }
    public var hasJoliet: Bool { descriptors.joliet != nil }
    /// The volume's size as its primary descriptor records it.
    public var volumeBytes: UInt64 { UInt64(descriptors.primary.volumeSpaceSectors) * UInt64(Self.sectorSize) }
    /// The sector of the El Torito boot catalog, when the image is bootable from a CD.
    public var bootCatalogSector: UInt32? { descriptors.bootCatalogSector }

    /// `preferring` forces a hierarchy (tests, and images whose Rock Ridge is broken).
    public init(device: any BlockDevice, preferring: Hierarchy? = nil) throws {
        self.device = device
        descriptors = try ISO9660VolumeDescriptors.read(device)
        let primaryRoot = descriptors.primary.root.dataOffset(sectorSize: UInt64(Self.sectorSize))
        try device.checkRange(offset: primaryRoot, count: UInt64(Self.sectorSize), what: "ISO 9660 root directory")
        let dot = try Self.record(on: device, at: primaryRoot)
        let rootUse = try ISO9660SystemUse.parse(dot, skip: 0, device: device)
        let rockRidge = rootUse.sharingProtocolSkip != nil && rootUse.hasRockRidge
        let chosen = preferring ?? (rockRidge ? .rockRidge : descriptors.joliet != nil ? .joliet : .plain)
        let volume: ISO9660VolumeDescriptors.Volume
        switch chosen {
        case .rockRidge:
            guard rockRidge else { throw WispError.unsupported(device.name, "this ISO 9660 image has no Rock Ridge extensions") }
            hierarchy = .rockRidge
            systemUseSkip = rootUse.sharingProtocolSkip ?? 0
            rootInode = primaryRoot
            volume = descriptors.primary
        case .joliet:
            guard let joliet = descriptors.joliet else { throw WispError.unsupported(device.name, "this ISO 9660 image has no Joliet volume") }
            hierarchy = .joliet
            systemUseSkip = 0
            rootInode = joliet.root.dataOffset(sectorSize: UInt64(Self.sectorSize))
            try device.checkRange(offset: rootInode, count: UInt64(Self.sectorSize), what: "Joliet root directory")
            volume = joliet
        case .plain:
            hierarchy = .plain
            systemUseSkip = 0
            rootInode = primaryRoot
            volume = descriptors.primary
        }
        pathTableParents = ISO9660PathTable.parents(of: volume, on: device)
    }

    // MARK: FileSystem

    public func stat(inode: UInt64) throws -> FileStat {
        let node = try node(inode)
        let use = node.use
        let type: FileType = node.directoryOffset != nil ? .directory
            : use?.mode.map { FileType(mode: $0) } ?? .regular
        var size: UInt64
        if let directory = node.directoryOffset {
            size = UInt64(try Self.record(on: device, at: directory).dataLength)
        } else if type == .symlink {
            size = UInt64(use?.symlinkTarget?.utf8.count ?? 0)
        } else {
            size = try extents(of: node.record).reduce(0) { $0 + $1.length }
        }
        if type == .characterDevice || type == .blockDevice || type == .fifo || type == .socket { size = 0 }
        let recorded = node.record.recorded
        return FileStat(
            inode: inode, type: type,
            permissions: use?.mode.map { $0 & 0o7777 } ?? 0o555,
            uid: use?.uid ?? 0, gid: use?.gid ?? 0, size: size,
            linkCount: use?.links ?? (type == .directory ? 2 : 1),
            accessTime: use?.access ?? use?.modification ?? recorded,
            modificationTime: use?.modification ?? recorded,
            changeTime: use?.change ?? use?.modification ?? recorded,
            deviceMajor: use?.deviceMajor ?? 0, deviceMinor: use?.deviceMinor ?? 0)
    }

    public func list(directory inode: UInt64) throws -> [DirectoryEntry] {
        if let cached = listings[inode] { return cached }
        let entries = try readListing(inode)
        if entries.count <= 65_536 { listings.insert(entries, for: inode) }
        return entries
    }

    private func readListing(_ inode: UInt64) throws -> [DirectoryEntry] {
        let node = try node(inode)
        guard let directory = node.directoryOffset else {
            throw WispError.invalidArgument("\(device.name): the ISO 9660 record at offset \(inode) is not a directory")
        }
        var entries: [DirectoryEntry] = []
        // A directory listed twice in one parent would make walkers visit its subtree
        // twice per level: refused, so every directory appears exactly once in the tree.
        var subdirectories = Set<UInt64>()
        func addSubdirectory(_ name: String, _ target: UInt64, _ record: ISO9660Record) throws {
            guard subdirectories.insert(target).inserted else {
                throw WispError.corrupt(device.name, "ISO 9660 directory record", at: record.offset,
                                        "names the directory at offset \(target) a second time in the same parent")
            }
            entries.append(DirectoryEntry(name: name, inode: target, type: .directory))
        }
        var previousContinues = false
        for record in try directoryRecords(at: directory) {
            defer { previousContinues = record.continuesInNextRecord }
            // Later parts of a multi-extent file belong to the entry of its first part.
            if previousContinues || record.isSelf || record.isParent || record.isAssociated { continue }
            let use = hierarchy == .rockRidge ? try ISO9660SystemUse.parse(record, skip: systemUseSkip, device: device) : nil
            if use?.isRelocated == true { continue }  // shown where its CL entry stands
            let name = self.name(of: record, use: use)
            try ISO9660Names.check(name, record: record, source: device.name)
            if let child = use?.childLink {
                let target = UInt64(child) * UInt64(Self.sectorSize)
                try checkSubdirectory(target, of: directory, relocated: true, record: record)
                try addSubdirectory(name, target, record)
            } else if record.isDirectory {
                let target = record.dataOffset(sectorSize: UInt64(Self.sectorSize))
                try checkSubdirectory(target, of: directory, relocated: false, record: record)
                try addSubdirectory(name, target, record)
            } else {
                entries.append(DirectoryEntry(name: name, inode: record.offset, type: use?.mode.map { FileType(mode: $0) } ?? .regular))
            }
        }
        return entries
    }

    public func read(inode: UInt64, offset: UInt64, count: Int) throws -> [UInt8] {
        guard count >= 0 else { throw WispError.invalidArgument("\(device.name): negative read length") }
        let node = try node(inode)
        guard node.directoryOffset == nil else {
            throw WispError.invalidArgument("\(device.name): the ISO 9660 entry at offset \(inode) is a directory")
        }
        if node.use?.isCompressed == true {
            throw WispError.unsupported(device.name, "the file whose record is at offset \(inode) is zisofs-compressed (ZF), which Wisp does not decompress")
        }
        guard node.record.fileUnitSize == 0, node.record.interleaveGap == 0 else {
            throw WispError.unsupported(device.name, "the file whose record is at offset \(inode) is recorded interleaved")
        }
        let extents = try extents(of: node.record)
        for extent in extents {
            try device.checkRange(offset: extent.deviceOffset, count: extent.length,
                                  what: "ISO 9660 file extent named by the directory record at offset \(extent.recordOffset)")
        }
        let size = extents.reduce(0) { $0 + $1.length }
        guard offset < size, count > 0 else { return [] }
        let wanted = Int(min(UInt64(count), size - offset))
        var output = [UInt8](repeating: 0, count: wanted)
        var produced = 0, extentStart: UInt64 = 0
        for extent in extents where produced < wanted {
            let extentEnd = extentStart + extent.length
            let position = offset + UInt64(produced)
            if position < extentEnd {
                let take = Int(min(extentEnd - position, UInt64(wanted - produced)))
                try output.withUnsafeMutableBytes { buffer in
                    try device.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[produced..<(produced + take)]),
                                    at: extent.deviceOffset + (position - extentStart))
                }
                produced += take
            }
            extentStart = extentEnd
        }
        return output
    }

    public func readlink(inode: UInt64) throws -> String {
        let node = try node(inode)
        guard let use = node.use, use.mode.map({ FileType(mode: $0) }) == .symlink else {
            throw WispError.invalidArgument("\(device.name): the ISO 9660 entry at offset \(inode) is not a symbolic link")
        }
        guard let target = use.symlinkTarget else {
            throw WispError.corrupt(device.name, "Rock Ridge entries of the record", at: inode, "a symbolic link (PX) without an SL entry")
        }
        return target
    }

    public func xattrs(inode: UInt64) throws -> [String: [UInt8]] { [:] }
}
