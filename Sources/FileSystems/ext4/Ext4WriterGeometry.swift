import WispCore

/// Where everything fixed goes, decided before the first byte of data: 4 KiB blocks,
/// 32768-block groups, 256-byte inodes, 64-byte descriptors (64bit), superblock backups
/// in groups 0, 1 and the powers of 3, 5 and 7 (sparse_super), and flex_bg with 16 groups
/// per flex group, whose block bitmaps, inode bitmaps and inode tables sit together at
/// the start of the flex group's first group, as mke2fs lays them out. Everything else is
/// `dataRanges`, handed out in order by the allocator.
struct Ext4WriterGeometry: Sendable {
    static let blockSize = 4096
    static let logBlockSize: UInt32 = 2
    static let blocksPerGroup: UInt64 = 32768
    static let inodeSize = 256
    static let inodesPerBlock: UInt32 = 16
    static let descriptorSize = 64
    static let logGroupsPerFlex = 4
    static let groupsPerFlex = 1 << logGroupsPerFlex
    static let firstInode: UInt32 = 11
    /// 8 MiB: below this mke2fs cannot make a journal, and nothing useful fits.
    static let minimumBlocks: UInt64 = 2048
    /// 64 TiB keeps every per-group table small.
    static let maximumBlocks: UInt64 = 1 << 34
    /// mke2fs's default bytes-per-inode ratio.
    static let bytesPerInode: UInt64 = 16384

    let blocksCount: UInt64
    let groupCount: Int
    let inodesPerGroup: UInt32
    let inodeTableBlocks: UInt64
    let descriptorBlocks: UInt64
    let blockBitmap: [UInt64]
    let inodeBitmap: [UInt64]
    let inodeTable: [UInt64]
    /// Free blocks in ascending order, for data, directories, extent blocks, the journal.
    let dataRanges: [Range<UInt64>]

    var inodesCount: UInt32 { UInt32(groupCount) * inodesPerGroup }

    init(byteSize: UInt64, requestedInodes: UInt32?, source: String) throws {
        var blocks = byteSize / UInt64(Self.blockSize)
        guard blocks >= Self.minimumBlocks else {
            throw WispError.invalidArgument("\(source): an ext4 image of \(byteSize) bytes is too small; it needs at least \(Self.minimumBlocks * UInt64(Self.blockSize)) bytes")
        }
        guard blocks <= Self.maximumBlocks else {
            throw WispError.invalidArgument("\(source): an ext4 image of \(byteSize) bytes is larger than the \(Self.maximumBlocks * UInt64(Self.blockSize))-byte limit")
        }
        var groups = Int((blocks + Self.blocksPerGroup - 1) / Self.blocksPerGroup)
        let wantedInodes = UInt64(requestedInodes ?? UInt32(min(UInt64(UInt32.max),
                                                                blocks * UInt64(Self.blockSize) / Self.bytesPerInode)))
        // A last group too small to be worth its bitmaps (or to hold its flex group's
        // metadata) is left off, as mke2fs does.
        let tail = blocks - UInt64(groups - 1) * Self.blocksPerGroup
        if groups > 1 && tail < 4096 {
            groups -= 1
            blocks = UInt64(groups) * Self.blocksPerGroup
        }
        var perGroup = (max(wantedInodes, UInt64(Self.firstInode) + 1) + UInt64(groups) - 1) / UInt64(groups)
        perGroup = (perGroup + UInt64(Self.inodesPerBlock) - 1) / UInt64(Self.inodesPerBlock) * UInt64(Self.inodesPerBlock)
        let maxPerGroup = UInt64(Self.blockSize * 8)
        guard perGroup <= maxPerGroup, UInt64(groups) * perGroup <= UInt64(UInt32.max) else {
            throw WispError.invalidArgument("\(source): \(wantedInodes) inodes do not fit in an ext4 image of \(byteSize) bytes (at most \(maxPerGroup) per block group, \(groups) groups); make the image larger")
        }
        blocksCount = blocks
        groupCount = groups
        inodesPerGroup = UInt32(perGroup)
        inodeTableBlocks = perGroup * UInt64(Self.inodeSize) / UInt64(Self.blockSize)
        descriptorBlocks = (UInt64(groups) * UInt64(Self.descriptorSize) + UInt64(Self.blockSize) - 1) / UInt64(Self.blockSize)

        var blockBitmap = [UInt64](repeating: 0, count: groups)
        var inodeBitmap = [UInt64](repeating: 0, count: groups)
        var inodeTable = [UInt64](repeating: 0, count: groups)
        var reservedEnd = [UInt64](repeating: 0, count: groups)
        for group in 0..<groups {
            reservedEnd[group] = Self.groupStart(group) + (Self.hasSuperblockBackup(group) ? 1 + descriptorBlocks : 0)
        }
        for flexStart in stride(from: 0, to: groups, by: Self.groupsPerFlex) {
            let members = min(Self.groupsPerFlex, groups - flexStart)
            var next = reservedEnd[flexStart]
            for i in 0..<members { blockBitmap[flexStart + i] = next + UInt64(i) }
            next += UInt64(members)
            for i in 0..<members { inodeBitmap[flexStart + i] = next + UInt64(i) }
            next += UInt64(members)
            for i in 0..<members { inodeTable[flexStart + i] = next + UInt64(i) * inodeTableBlocks }
            next += UInt64(members) * inodeTableBlocks
            let groupEnd = min(Self.groupStart(flexStart) + Self.blocksPerGroup, blocks)
            guard next + 16 <= groupEnd else {
                throw WispError.invalidArgument("\(source): \(UInt64(groups) * perGroup) inodes leave no room for data in an ext4 image of \(byteSize) bytes; make the image larger or ask for fewer inodes")
            }
            reservedEnd[flexStart] = next
        }
        self.blockBitmap = blockBitmap
        self.inodeBitmap = inodeBitmap
        self.inodeTable = inodeTable

        var ranges: [Range<UInt64>] = []
        for group in 0..<groups {
            let end = min(Self.groupStart(group) + Self.blocksPerGroup, blocks)
            let start = reservedEnd[group]
            guard start < end else { continue }
            if let last = ranges.last, last.upperBound == start {
                ranges[ranges.count - 1] = last.lowerBound..<end
            } else {
                ranges.append(start..<end)
            }
        }
        dataRanges = ranges
    }

    static func groupStart(_ group: Int) -> UInt64 { UInt64(group) * blocksPerGroup }

    func groupBlockCount(_ group: Int) -> UInt64 {
        min(Self.groupStart(group) + Self.blocksPerGroup, blocksCount) - Self.groupStart(group)
    }

    /// sparse_super: groups 0 and 1 and the powers of 3, 5 and 7 keep a superblock and
    /// descriptor-table copy.
    static func hasSuperblockBackup(_ group: Int) -> Bool {
        if group <= 1 { return true }
        if group & 1 == 0 { return false }
        for base in [3, 5, 7] {
            var power = base
            while power < group { power *= base }
            if power == group { return true }
        }
        return false
    }

    /// Byte offset of inode `number` in its group's inode table.
    func inodeOffset(_ number: UInt32) -> UInt64 {
        let index = number - 1
        let group = Int(index / inodesPerGroup)
        let within = UInt64(index % inodesPerGroup)
        return inodeTable[group] * UInt64(Self.blockSize) + within * UInt64(Self.inodeSize)
    }

    /// Blocks that hold fixed metadata in `group`: its superblock and descriptor copy,
    /// and for the first group of a flex group, the whole flex group's bitmaps and tables.
    func fixedMetadataRanges(in group: Int) -> [Range<UInt64>] {
        var result: [Range<UInt64>] = []
        let start = Self.groupStart(group)
        var end = start
        if Self.hasSuperblockBackup(group) { end += 1 + descriptorBlocks }
        if group % Self.groupsPerFlex == 0 {
            let members = min(Self.groupsPerFlex, groupCount - group)
            end = inodeTable[group + members - 1] + inodeTableBlocks
        }
        if end > start { result.append(start..<end) }
        return result
    }

    /// mke2fs's journal size for this filesystem.
    var defaultJournalBlocks: UInt64 { Self.journalBlocks(forFilesystemBlocks: blocksCount) }

    /// `ext2fs_default_journal_size`: 4 MiB under 128 MiB, growing to 1 GiB from 128 GiB.
    static func journalBlocks(forFilesystemBlocks blocks: UInt64) -> UInt64 {
        switch blocks {
        case ..<2048: 0
        case ..<32768: 1024
        case ..<(256 * 1024): 4096
        case ..<(512 * 1024): 8192
        case ..<(4096 * 1024): 16384
        case ..<(8192 * 1024): 32768
        case ..<(16384 * 1024): 65536
        case ..<(32768 * 1024): 131072
        default: 262144
        }
    }
}
