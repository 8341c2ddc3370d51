import WispCore

/// Writes an ext4 filesystem image from a stream of entries, without mounting anything,
/// without root, and without holding file contents: what `mke2fs -d` does from a
/// directory, but fed entry by entry (a container image's tar layers), keeping every
/// owner, mode, timestamp (nanoseconds, crtime), extended attribute, hard link and
/// device node.
///
/// Geometry (block groups, inode tables, the journal) is fixed when the writer is made,
/// from `Ext4WriterOptions.size` and `.inodeCount` (`Ext4Writer.recommendedSize` computes
/// them from a tar scan). File data is streamed into blocks allocated in order and
/// written in large sequential batches; whole zero blocks become holes. Directories,
/// bitmaps, group descriptors and superblocks are written by `finish()`. Memory holds one
/// record per directory entry, never file contents.
///
/// Features: extents (trees of any depth), 64bit, flex_bg, sparse_super, metadata_csum,
/// dir_index (half_md4 or TEA), huge_file, large_file, dir_nlink, extra_isize, ext_attr,
/// has_journal (jbd2 v2, clean).
///
/// Entries arrive with absolute or relative paths in any order; missing parents are made
/// as directories (0755, root, the image timestamp) that a later `addDirectory` for the
/// same path gives its real metadata. `remove(_:)` takes an entry (and everything below
/// it) back out, for whiteouts. Not Sendable: one caller drives it.
///
/// ```swift
/// let plan = try Ext4Writer.plan(fileBytes: scan.bytes, entryCount: scan.entries, directoryCount: scan.directories)
/// let writer = try Ext4Writer(path: "root.img", options: Ext4WriterOptions(
///     size: plan.size, inodeCount: plan.inodeCount, uuid: id, label: "root"))
/// try writer.addDirectory("/etc", metadata: m)
/// try writer.addFile("/etc/hostname", metadata: m, size: 5) { sink in try sink.write(Array("wisp\n".utf8)) }
/// try writer.addHardLink("/etc/hostname.bak", target: "/etc/hostname")
/// try writer.finish()
/// ```
public final class Ext4Writer {
    static let rootInode: UInt32 = 2
    static let lostAndFoundInode: UInt32 = 11
    /// EXT4_LINK_MAX: more links than this and a directory counts 1 (dir_nlink).
    static let maxLinks: UInt32 = 65000
    /// Largest file: 2^32 - 1 blocks.
    public static let maximumFileSize: UInt64 = (Ext4WriterExtentTree.maxLogicalBlocks - 1) * UInt64(Ext4WriterGeometry.blockSize)

    static let extentsFlag: UInt32 = 0x80000
    static let indexFlag: UInt32 = 0x1000

    struct Child {
        var inode: UInt32
        var fileType: UInt8
    }

    struct Directory {
        var name: Ext4WriterName
        var parent: UInt32
        var metadata: Ext4EntryMetadata
        /// Given by `addDirectory` rather than made for an entry below it.
        var explicit: Bool
        var children: [Ext4WriterName: Child] = [:]
        var subdirectories: UInt32 = 0
    }

    let options: Ext4WriterOptions
    let geometry: Ext4WriterGeometry
    let device: any BlockDevice
    let output: AtomicOutput?
    /// The target, for error messages.
    let name: String
    /// Every block of the target already reads as zeros (a new sparse file).
    let targetIsZeroed: Bool
    var superblock: Ext4WriterSuperblock
    var allocator: Ext4WriterAllocator
    let data: Ext4WriteBatch
    let inodeTable: Ext4WriteBatch
    let directoryHash: Ext4WriterDirectoryHash
    var filesystemSeed: UInt32 { superblock.filesystemSeed }

    var nextInode: UInt32 = Ext4WriterGeometry.firstInode + 1
    var directories: [UInt32: Directory] = [:]
    /// Link counts of non-directories that have more than one name.
    var linkCounts: [UInt32: UInt32] = [:]
    /// One bit per inode number: in use.
    var live: [UInt64] = []
    /// Inodes written and later removed: their slots are zeroed by `finish()`.
    var removed: [UInt32] = []
    var journalBlocks: UInt64 = 0

    enum State { case open, writingFile, finished, failed }
    var state = State.open

    /// Writes a new image file at `path` (options.size is required), atomically: it
    /// appears complete at `finish()`, or not at all. Unused space stays sparse.
    public convenience init(path: String, options: Ext4WriterOptions, permissions: UInt32 = 0o644) throws {
        guard let size = options.size else {
            throw WispError.invalidArgument("\(path): an ext4 image written to a file needs a size")
        }
        let geometry = try Ext4WriterGeometry(byteSize: size, requestedInodes: options.inodeCount, source: path)
        let output = try AtomicOutput(path: path, permissions: permissions)
        do {
            try output.file.truncate(to: size)
            let device = try FileBlockDevice(file: output.file)
            try self.init(device: device, geometry: geometry, options: options, output: output, name: path, zeroed: true,
                          writeback: (output.file, 0))
        } catch {
            output.discard()
            throw error
        }
    }

    /// Writes into a writable device or a region of one (a `SliceBlockDevice` over a raw
    /// disk's partition), `options.size` bytes of it or all of it. Nothing outside the
    /// filesystem's blocks is touched. Unless `deviceIsZeroed`, the journal is zeroed and
    /// inode tables are left for the kernel's lazy init to zero, as mke2fs's lazy_itable_init.
    public convenience init(device: any BlockDevice, options: Ext4WriterOptions, deviceIsZeroed: Bool = false) throws {
        guard !device.isReadOnly else {
            throw WispError.invalidArgument("\(device.name): the device is read-only; an ext4 image cannot be written to it")
        }
        let size = options.size ?? device.size
        guard size <= device.size else {
            throw WispError.invalidArgument("\(device.name): an ext4 image of \(size) bytes does not fit in the \(device.size)-byte device")
        }
        let geometry = try Ext4WriterGeometry(byteSize: size, requestedInodes: options.inodeCount, source: device.name)
        try self.init(device: device, geometry: geometry, options: options, output: nil, name: device.name,
                      zeroed: deviceIsZeroed, writeback: nil)
    }

    /// Writes into `[offset, offset + options.size)` of an open file (a raw disk whose
    /// partition this will be); the file must already be that large.
    public convenience init(file: PosixFile, offset: UInt64, options: Ext4WriterOptions, fileIsZeroed: Bool = false) throws {
        guard let size = options.size else {
            throw WispError.invalidArgument("\(file.displayPath): an ext4 image written into a region needs a size")
        }
        let whole = try FileBlockDevice(file: file)
        let region = try SliceBlockDevice(base: whole, start: offset, size: size, name: "\(file.displayPath) at offset \(offset)")
        let geometry = try Ext4WriterGeometry(byteSize: size, requestedInodes: options.inodeCount, source: region.name)
        try self.init(device: region, geometry: geometry, options: options, output: nil, name: region.name,
                      zeroed: fileIsZeroed, writeback: (file, offset))
    }

    private init(device: any BlockDevice, geometry: Ext4WriterGeometry, options: Ext4WriterOptions,
                 output: AtomicOutput?, name: String, zeroed: Bool, writeback: (file: PosixFile, offset: UInt64)?) throws {
        guard !device.isReadOnly else {
            throw WispError.invalidArgument("\(name): the device is read-only; an ext4 image cannot be written to it")
        }
        guard options.label.utf8.count <= 16, !options.label.utf8.contains(0) else {
            throw WispError.invalidArgument("\(name): ext4 label \"\(options.label)\" is longer than 16 bytes or contains NUL")
        }
        guard (0...50).contains(options.reservedBlocksPercent) else {
            throw WispError.invalidArgument("\(name): reserved blocks percentage \(options.reservedBlocksPercent) is outside 0...50")
        }
        try Ext4WriterInode.checkTime(options.timestamp, "the image timestamp", path: name)
        self.options = options
        self.geometry = geometry
        self.device = device
        self.output = output
        self.name = name
        targetIsZeroed = zeroed
        superblock = Ext4WriterSuperblock(geometry: geometry, options: options)
        allocator = Ext4WriterAllocator(ranges: geometry.dataRanges)
        data = Ext4WriteBatch(device: device, capacity: 8 << 20, writeback: writeback, background: true)
        inodeTable = Ext4WriteBatch(device: device, capacity: 1 << 20)
        directoryHash = Ext4WriterDirectoryHash(version: options.hashVersion, seedBytes: superblock.hashSeed)
        try failing {
            try writeReservedInodes()
        }
    }

    deinit {
        output?.discard()
    }

    /// Abandons the image: a file target is removed; a device keeps whatever was written.
    public func discard() {
        state = .failed
        output?.discard()
    }

    // MARK: Inode numbers

    func isLive(_ number: UInt32) -> Bool {
        let word = Int(number / 64)
        return word < live.count && live[word] & (1 << UInt64(number % 64)) != 0
    }

    func setLive(_ number: UInt32, _ value: Bool) {
        let word = Int(number / 64)
        while live.count <= word { live.append(0) }
        if value {
            live[word] |= 1 << UInt64(number % 64)
        } else {
            live[word] &= ~(1 << UInt64(number % 64))
        }
    }

    /// The next inode number, its table slot written as zeros so the table grows as one run.
    func allocateInode(for path: String) throws -> UInt32 {
        guard nextInode <= geometry.inodesCount else {
            throw WispError.invalidArgument("\(path): the ext4 image has no inode left (all \(geometry.inodesCount) are used); make it with more inodes")
        }
        let number = nextInode
        nextInode += 1
        try writeInodeSlot(number, [UInt8](repeating: 0, count: Ext4WriterInode.size))
        return number
    }

    func writeInodeSlot(_ number: UInt32, _ bytes: [UInt8]) throws {
        try failing { try inodeTable.write(bytes, at: geometry.inodeOffset(number)) }
    }

    func checksumSeed(inode number: UInt32) -> UInt32 {
        Ext4Checksums.inodeSeed(filesystemSeed: filesystemSeed, inode: number, generation: 0)
    }

    /// Runs device I/O; a failure there leaves the image unusable, so the writer refuses
    /// everything after it.
    func failing<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            state = .failed
            throw error
        }
    }

    func checkOpen(_ path: String) throws {
        switch state {
        case .open: return
        case .writingFile:
            throw WispError.invalidArgument("\(path): cannot add to the ext4 image while a file's contents are being written")
        case .finished:
            throw WispError.invalidArgument("\(path): the ext4 image is already finished")
        case .failed:
            throw WispError(.failed, "\(path): an earlier write to \(name) failed; the ext4 image is incomplete")
        }
    }

    // MARK: Setup

    /// Inodes 1-10 (the journal is 8), and the root and lost+found directories.
    private func writeReservedInodes() throws {
        let stamp = options.timestamp
        let rootMetadata = Ext4EntryMetadata(permissions: 0o755, modificationTime: stamp)
        for number in UInt32(1)...Ext4WriterGeometry.firstInode {
            switch number {
            case Self.rootInode:
                try writeInodeSlot(number, [UInt8](repeating: 0, count: Ext4WriterInode.size))
                directories[number] = Directory(name: "", parent: Self.rootInode, metadata: rootMetadata, explicit: false)
            case Ext4WriterJournal.inode where options.journal:
                try writeJournal()
            case Self.lostAndFoundInode:
                try writeInodeSlot(number, [UInt8](repeating: 0, count: Ext4WriterInode.size))
                var metadata = rootMetadata
                metadata.permissions = 0o700
                directories[number] = Directory(name: "lost+found", parent: Self.rootInode, metadata: metadata, explicit: false)
                directories[Self.rootInode]?.children["lost+found"] = Child(inode: number, fileType: 2)
                directories[Self.rootInode]?.subdirectories += 1
            default:
                try writeInodeSlot(number, Ext4WriterInode.reserved(number: number, filesystemSeed: filesystemSeed))
            }
            setLive(number, true)
        }
    }

    private func writeJournal() throws {
        let blocks = geometry.defaultJournalBlocks
        let number = Ext4WriterJournal.inode
        let runs = try allocator.allocate(blocks, owner: number, what: "\(name): journal")
        var extents: [Ext4WriterExtent] = []
        var logical: UInt32 = 0
        for run in runs {
            Ext4WriterExtentTree.append(&extents, logical: logical, physical: run.lowerBound, count: UInt32(run.count))
            logical += UInt32(run.count)
        }
        let first = runs[0].lowerBound * UInt64(Ext4WriterGeometry.blockSize)
        try data.write(Ext4WriterJournal.superblock(blocks: blocks, uuid: superblock.uuid), at: first)
        if !targetIsZeroed {
            for run in runs {
                let start = max(run.lowerBound, runs[0].lowerBound + 1)
                guard start < run.upperBound else { continue }
                try data.writeZeros(at: start * UInt64(Ext4WriterGeometry.blockSize),
                                    count: (run.upperBound - start) * UInt64(Ext4WriterGeometry.blockSize))
            }
        }
        let tree = try extentTree(extents, owner: number, what: "\(name): journal")
        var inode = Ext4WriterInode(mode: Ext4WriterInode.regularType | 0o600)
        let stamp = options.timestamp
        inode.accessTime = stamp
        inode.changeTime = stamp
        inode.modificationTime = stamp
        inode.creationTime = stamp
        inode.size = blocks * UInt64(Ext4WriterGeometry.blockSize)
        inode.flags = Self.extentsFlag
        inode.iBlock = tree.iBlock
        inode.sectors = (blocks + UInt64(tree.nodes.count)) * UInt64(Ext4WriterGeometry.blockSize / 512)
        try writeInodeSlot(number, inode.encoded(number: number, filesystemSeed: filesystemSeed))
        superblock.journalIBlock = tree.iBlock
        superblock.journalSize = inode.size
        journalBlocks = blocks
    }

    /// Builds the extent tree for `extents`, allocating and writing its node blocks.
    func extentTree(_ extents: [Ext4WriterExtent], owner: UInt32, what: @autoclosure () -> String) throws -> Ext4WriterExtentTree {
        let count = Ext4WriterExtentTree.nodeBlocks(forExtents: extents.count)
        var blocks: [UInt64] = []
        if count > 0 {
            for run in try allocator.allocate(UInt64(count), owner: owner, what: what()) {
                blocks += Array(run)
            }
        }
        let tree = Ext4WriterExtentTree(extents: extents, nodeBlocks: blocks, checksumSeed: checksumSeed(inode: owner))
        try failing {
            for node in tree.nodes {
                try data.write(node.bytes, at: node.block * UInt64(Ext4WriterGeometry.blockSize))
            }
        }
        return tree
    }
}
