import WispCore

/// A read-only ext2/ext3/ext4 reader over any `BlockDevice`. Everything on the device is
/// hostile: the superblock, group descriptors, inodes, extent and indirect blocks,
/// directory blocks and attributes are bounds-checked, and verified against their
/// checksums when the filesystem has metadata_csum (gdt_csum for descriptors). A journal
/// that needs recovery is not replayed; reading proceeds on the checkpointed state and
/// `warnings` says so, as `e2fsck -n` would.
public final class Ext4Reader: FileSystem {
    public let device: any BlockDevice
    public let superblock: Ext4Superblock
    public let warnings: [String]
    let groups: Ext4GroupTable
    /// About 4 MiB of recently used inode table blocks.
    private let inodeTableCache: SharedLRUCache<UInt64, [UInt8]>
    private let runCache = LockedValue<[UInt32: [Ext4Run]]>([:])
    private static let runCacheLimit = 32
    /// Recently listed directories: path resolution lists every directory on the way,
    /// and callers resolve many paths under the same few directories.
    private let listingCache = LockedValue<[UInt32: [DirectoryEntry]]>([:])
    private static let listingCacheEntryLimit = 200_000

    public init(device: any BlockDevice) throws {
        self.device = device
        guard device.size >= Ext4Superblock.offset + UInt64(Ext4Superblock.size) else {
            throw WispError.corrupt(device.name, "ext4 superblock", at: Ext4Superblock.offset,
                                    "the device is only \(device.size) bytes, too small to hold one")
        }
        let sb = try Ext4Superblock(try device.read(at: Ext4Superblock.offset, count: Ext4Superblock.size),
                                    source: device.name, deviceSize: device.size)
        superblock = sb
        groups = Ext4GroupTable(device: device, superblock: sb)
        inodeTableCache = SharedLRUCache(capacity: max(32, (4 << 20) / sb.blockSize))
        var warnings: [String] = []
        if sb.features.hasIncompatible(Ext4Features.recover) {
            warnings.append("\(device.name): the ext4 journal needs recovery (the filesystem was not cleanly unmounted); reading without replaying it, so the most recent changes may be missing")
        }
        if sb.state & 0x2 != 0 {
            warnings.append("\(device.name): the ext4 filesystem is marked as having errors; run e2fsck on it")
        }
        self.warnings = warnings
        let root = try inode(UInt64(rootInode))
        guard root.type == .directory else {
            throw WispError.corrupt(device.name, "ext4 inode 2", at: root.offset, "the root inode is not a directory (mode 0o\(String(root.mode, radix: 8)))")
        }
    }

    public var typeName: String { superblock.features.typeName }
    public var label: String? { superblock.label }
    public var uuid: String? { superblock.uuid }
    public var rootInode: UInt64 { 2 }
    public var features: Ext4Features { superblock.features }

    // MARK: FileSystem

    public func stat(inode number: UInt64) throws -> FileStat {
        let inode = try inode(number)
        var stat = FileStat(inode: number, type: inode.type, permissions: inode.permissions, uid: inode.uid,
                            gid: inode.gid, size: inode.size, linkCount: UInt32(inode.linksCount),
                            accessTime: inode.accessTime, modificationTime: inode.modificationTime,
                            changeTime: inode.changeTime)
        if inode.type == .characterDevice || inode.type == .blockDevice {
            (stat.deviceMajor, stat.deviceMinor) = inode.deviceNumbers
        }
        return stat
    }

    public func list(directory number: UInt64) throws -> [DirectoryEntry] {
        if let cached = listingCache.withLock({ $0[UInt32(truncatingIfNeeded: number)] }),
           number <= UInt64(superblock.inodesCount) {
            return cached
        }
        let entries = try directoryEntries(try inode(number))
        listingCache.withLock { cache in
            let held = cache.values.reduce(0) { $0 + $1.count }
            if cache.count >= 16 || held + entries.count > Self.listingCacheEntryLimit {
                cache.removeAll(keepingCapacity: true)
            }
            if entries.count <= Self.listingCacheEntryLimit { cache[UInt32(number)] = entries }
        }
        return entries
    }

    public func read(inode number: UInt64, offset: UInt64, count: Int) throws -> [UInt8] {
        let inode = try inode(number)
        switch inode.type {
        case .regular, .directory, .symlink: break
        default:
            throw WispError.invalidArgument("\(device.name): ext4 inode \(number) is a \(inode.type.rawValue), which holds no data to read")
        }
        return try contents(inode, offset: offset, count: count)
    }

    public func readlink(inode number: UInt64) throws -> String {
        let inode = try inode(number)
        guard inode.type == .symlink else {
            throw WispError.invalidArgument("\(device.name): ext4 inode \(number) is not a symbolic link")
        }
        guard inode.size <= UInt64(superblock.blockSize) else {
            throw WispError.corrupt(device.name, "ext4 inode \(number)", at: inode.offset + 4,
                                    "symbolic link of \(inode.size) bytes is longer than a block")
        }
        let bytes = try contents(inode, offset: 0, count: Int(inode.size))
        return String(decoding: bytes, as: UTF8.self)
    }

    public func xattrs(inode number: UInt64) throws -> [String: [UInt8]] {
        try extendedAttributes(try inode(number))
    }

    // MARK: Inodes and blocks

    /// Reads, checks and decodes inode `number`.
    func inode(_ number: UInt64) throws -> Ext4Inode {
        let sb = superblock
        guard number >= 1, number <= UInt64(sb.inodesCount) else {
            throw WispError.notFound("\(device.name): ext4 inode \(number) does not exist (inodes are 1...\(sb.inodesCount))")
        }
        let group = UInt32((number - 1) / UInt64(sb.inodesPerGroup))
        let index = (number - 1) % UInt64(sb.inodesPerGroup)
        let descriptor = try groups.descriptor(group)
        if descriptor.inodeTableUninitialized {
            throw WispError.corrupt(device.name, "ext4 inode \(number)",
                                    "lies in group \(group), whose inode table is marked uninitialised")
        }
        let byteInTable = index * UInt64(sb.inodeSize)
        let block = descriptor.inodeTable + byteInTable / UInt64(sb.blockSize)
        let within = Int(byteInTable % UInt64(sb.blockSize))
        let bytes = try inodeTableCache.value(for: block) { try readBlock(block) }
        return try Ext4Inode(number: UInt32(number), raw: Array(bytes[within..<(within + sb.inodeSize)]),
                             offset: block * UInt64(sb.blockSize) + UInt64(within), superblock: sb,
                             source: device.name)
    }

    /// One filesystem block.
    func readBlock(_ block: UInt64) throws -> [UInt8] {
        guard block < superblock.blocksCount else {
            throw WispError.corrupt(device.name, "ext4 block \(block)", "lies past the end of the filesystem (\(superblock.blocksCount) blocks)")
        }
        return try device.read(at: block * UInt64(superblock.blockSize), count: superblock.blockSize)
    }

    /// The file's logical→physical runs, from its extent tree or block map, cached for the
    /// few most recently read files so that streaming a big file reads its tree once.
    func fileRuns(_ inode: Ext4Inode) throws -> [Ext4Run] {
        if let cached = runCache.withLock({ $0[inode.number] }) { return cached }
        let runs = inode.usesExtents ? try extentRuns(inode) : try blockMapRuns(inode)
        runCache.withLock { cache in
            if cache.count >= Self.runCacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[inode.number] = runs
        }
        return runs
    }

    /// Whether a symlink keeps its target in i_block (the kernel's test: it owns no blocks
    /// beyond its attribute block).
    func isFastSymlink(_ inode: Ext4Inode) -> Bool {
        guard inode.type == .symlink, !inode.hasInlineData else { return false }
        let attributeSectors = inode.fileACL != 0 ? UInt64(superblock.clusterSize / 512) : 0
        return inode.sectors == attributeSectors
    }

    /// Up to `count` bytes of the inode's data at `offset`: inline data, a fast symlink's
    /// i_block, or blocks through the run map (holes and unwritten runs are zeros; each
    /// run is one device read).
    func contents(_ inode: Ext4Inode, offset: UInt64, count: Int) throws -> [UInt8] {
        guard count > 0, offset < (try checkedSize(inode)) else { return [] }
        guard !inode.isEncrypted else {
            throw WispError.unsupported(device.name, "ext4 inode \(inode.number) is encrypted (fscrypt); its contents cannot be read")
        }
        let n = Int(min(UInt64(count), inode.size - offset))
        if inode.hasInlineData || isFastSymlink(inode) {
            var data = Array(inode.iBlock)
            if inode.hasInlineData, inode.size > UInt64(Ext4Inode.iBlockSize) {
                guard let more = try inlineDataAttribute(inode) else {
                    throw WispError.corrupt(device.name, "ext4 inode \(inode.number)", at: inode.offset,
                                            "inline data of \(inode.size) bytes but no system.data attribute")
                }
                data += more
            }
            guard UInt64(data.count) >= inode.size else {
                throw WispError.corrupt(device.name, "ext4 inode \(inode.number)", at: inode.offset + 4,
                                        "size \(inode.size) exceeds the \(data.count) bytes stored in the inode")
            }
            let start = Int(offset)
            return Array(data[start..<(start + n)])
        }
        let runs = try fileRuns(inode)
        let blockSize = UInt64(superblock.blockSize)
        var out = [UInt8](repeating: 0, count: n)
        let end = offset + UInt64(n)
        let firstBlock = offset / blockSize
        // First run that ends after the first wanted block.
        var lo = 0, hi = runs.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if runs[mid].logicalEnd <= firstBlock { lo = mid + 1 } else { hi = mid }
        }
        try out.withUnsafeMutableBytes { buffer in
            var i = lo
            while i < runs.count {
                let run = runs[i]
                let runStart = run.logical * blockSize
                guard runStart < end else { break }
                i += 1
                if run.unwritten { continue }
                let from = max(runStart, offset)
                let to = min(run.logicalEnd * blockSize, end)
                guard from < to else { continue }
                let target = UnsafeMutableRawBufferPointer(
                    rebasing: buffer[Int(from - offset)..<Int(to - offset)])
                try device.read(into: target, at: run.physical * blockSize + (from - runStart))
            }
        }
        return out
    }
}
