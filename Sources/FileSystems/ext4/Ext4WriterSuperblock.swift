import Foundation
import WispCore

/// What one group descriptor records, counted when the bitmaps are made.
struct Ext4WriterGroupSummary: Sendable {
    var freeBlocks: UInt32 = 0
    var freeInodes: UInt32 = 0
    var usedDirectories: UInt32 = 0
    var unusedInodeTail: UInt32 = 0
    var flags: UInt16 = 0
    var blockBitmapChecksum: UInt32 = 0
    var inodeBitmapChecksum: UInt32 = 0

    static let inodeUninitialized: UInt16 = 0x1
    static let inodeTableZeroed: UInt16 = 0x4
}

/// The superblock (primary and sparse_super backups) and 64-byte group descriptors,
/// with metadata_csum checksums.
struct Ext4WriterSuperblock {
    static let compatible = Ext4Features.hasJournal | Ext4Features.extAttr | Ext4Features.dirIndex
    static let incompatible = Ext4Features.filetype | Ext4Features.extents | Ext4Features.is64Bit | Ext4Features.flexBG
    static let dirNlink: UInt32 = 0x20
    static let extraIsize: UInt32 = 0x40
    static let readOnlyCompatible = Ext4Features.sparseSuper | Ext4Features.largeFile | Ext4Features.hugeFile
        | dirNlink | extraIsize | Ext4Features.metadataCsum
    /// s_flags: directory hashes read names as signed chars.
    static let signedDirectoryHash: UInt32 = 0x1
    /// s_default_mount_opts: user_xattr, acl (what mke2fs sets).
    static let defaultMountOptions: UInt32 = 0x4 | 0x8

    let geometry: Ext4WriterGeometry
    let options: Ext4WriterOptions
    let uuid: [UInt8]
    let hashSeed: [UInt8]
    let filesystemSeed: UInt32
    var freeBlocks: UInt64 = 0
    var freeInodes: UInt64 = 0
    var journalIBlock: [UInt8]?
    var journalSize: UInt64 = 0

    init(geometry: Ext4WriterGeometry, options: Ext4WriterOptions) {
        self.geometry = geometry
        self.options = options
        uuid = Self.bytes(options.uuid)
        hashSeed = Self.bytes(options.hashSeed)
        filesystemSeed = Ext4Checksums.crc32c(0xFFFF_FFFF, uuid)
    }

    static func bytes(_ uuid: UUID) -> [UInt8] {
        withUnsafeBytes(of: uuid.uuid) { Array($0) }
    }

    var reservedBlocks: UInt64 { geometry.blocksCount * UInt64(options.reservedBlocksPercent) / 100 }

    /// The 1024 superblock bytes as stored in `group` (0 for the primary).
    func encoded(group: Int) -> [UInt8] {
        let g = geometry
        var sb = [UInt8](repeating: 0, count: Ext4Superblock.size)
        let time = UInt64(bitPattern: options.timestamp.seconds)
        sb.putLE32(g.inodesCount, at: 0x0)
        sb.putLE32(UInt32(truncatingIfNeeded: g.blocksCount), at: 0x4)
        sb.putLE32(UInt32(truncatingIfNeeded: reservedBlocks), at: 0x8)
        sb.putLE32(UInt32(truncatingIfNeeded: freeBlocks), at: 0xC)
        sb.putLE32(UInt32(truncatingIfNeeded: freeInodes), at: 0x10)
        sb.putLE32(0, at: 0x14)                                   // s_first_data_block
        sb.putLE32(Ext4WriterGeometry.logBlockSize, at: 0x18)
        sb.putLE32(Ext4WriterGeometry.logBlockSize, at: 0x1C)     // s_log_cluster_size
        sb.putLE32(UInt32(Ext4WriterGeometry.blocksPerGroup), at: 0x20)
        sb.putLE32(UInt32(Ext4WriterGeometry.blocksPerGroup), at: 0x24)
        sb.putLE32(g.inodesPerGroup, at: 0x28)
        sb.putLE32(UInt32(truncatingIfNeeded: time), at: 0x30)    // s_wtime
        sb.putLE16(0xFFFF, at: 0x36)                              // s_max_mnt_count -1
        sb.putLE16(Ext4Superblock.magic, at: 0x38)
        sb.putLE16(1, at: 0x3A)                                   // s_state: clean
        sb.putLE16(1, at: 0x3C)                                   // s_errors: continue
        sb.putLE32(UInt32(truncatingIfNeeded: time), at: 0x40)    // s_lastcheck
        sb.putLE32(1, at: 0x4C)                                   // s_rev_level: dynamic
        sb.putLE32(Ext4WriterGeometry.firstInode, at: 0x54)
        sb.putLE16(UInt16(Ext4WriterGeometry.inodeSize), at: 0x58)
        sb.putLE16(UInt16(truncatingIfNeeded: group), at: 0x5A)
        sb.putLE32(options.journal ? Self.compatible : Self.compatible & ~Ext4Features.hasJournal, at: 0x5C)
        sb.putLE32(Self.incompatible, at: 0x60)
        sb.putLE32(Self.readOnlyCompatible, at: 0x64)
        sb.replaceSubrange(0x68..<0x78, with: uuid)
        let label = Array(options.label.utf8)
        sb.replaceSubrange(0x78..<(0x78 + label.count), with: label)
        if let journalIBlock {
            sb.putLE32(Ext4WriterJournal.inode, at: 0xE0)
            sb.replaceSubrange(0x10C..<(0x10C + 60), with: journalIBlock)
            sb.putLE32(UInt32(truncatingIfNeeded: journalSize >> 32), at: 0x10C + 60)
            sb.putLE32(UInt32(truncatingIfNeeded: journalSize), at: 0x10C + 64)
            sb[0xFD] = 1                                          // s_jnl_backup_type: blocks
        }
        sb.replaceSubrange(0xEC..<0xFC, with: hashSeed)
        sb[0xFC] = options.hashVersion.code
        sb.putLE16(UInt16(Ext4WriterGeometry.descriptorSize), at: 0xFE)
        sb.putLE32(Self.defaultMountOptions, at: 0x100)
        sb.putLE32(UInt32(truncatingIfNeeded: time), at: 0x108)   // s_mkfs_time
        sb.putLE32(UInt32(truncatingIfNeeded: g.blocksCount >> 32), at: 0x150)
        sb.putLE32(UInt32(truncatingIfNeeded: reservedBlocks >> 32), at: 0x154)
        sb.putLE32(UInt32(truncatingIfNeeded: freeBlocks >> 32), at: 0x158)
        sb.putLE16(UInt16(Ext4WriterInode.extraSize), at: 0x15C)  // s_min_extra_isize
        sb.putLE16(UInt16(Ext4WriterInode.extraSize), at: 0x15E)  // s_want_extra_isize
        sb.putLE32(Self.signedDirectoryHash, at: 0x160)
        sb[0x174] = UInt8(Ext4WriterGeometry.logGroupsPerFlex)
        sb[0x175] = 1                                             // s_checksum_type: crc32c
        // The high bytes of the times (s_wtime_hi, s_mkfs_time_hi, s_lastcheck_hi).
        let high = UInt8(truncatingIfNeeded: time >> 32)
        sb[0x274] = high
        sb[0x276] = high
        sb[0x277] = high
        sb.putLE32(Ext4Checksums.crc32c(0xFFFF_FFFF, sb[0..<0x3FC]), at: 0x3FC)
        return sb
    }

    func descriptor(group: Int, _ s: Ext4WriterGroupSummary) -> [UInt8] {
        let g = geometry
        var d = [UInt8](repeating: 0, count: Ext4WriterGeometry.descriptorSize)
        func split64(_ value: UInt64, lo: Int, hi: Int) {
            d.putLE32(UInt32(truncatingIfNeeded: value), at: lo)
            d.putLE32(UInt32(truncatingIfNeeded: value >> 32), at: hi)
        }
        func split32(_ value: UInt32, lo: Int, hi: Int) {
            d.putLE16(UInt16(truncatingIfNeeded: value), at: lo)
            d.putLE16(UInt16(truncatingIfNeeded: value >> 16), at: hi)
        }
        split64(g.blockBitmap[group], lo: 0x0, hi: 0x20)
        split64(g.inodeBitmap[group], lo: 0x4, hi: 0x24)
        split64(g.inodeTable[group], lo: 0x8, hi: 0x28)
        split32(s.freeBlocks, lo: 0xC, hi: 0x2C)
        split32(s.freeInodes, lo: 0xE, hi: 0x2E)
        split32(s.usedDirectories, lo: 0x10, hi: 0x30)
        d.putLE16(s.flags, at: 0x12)
        split32(s.blockBitmapChecksum, lo: 0x18, hi: 0x38)
        split32(s.inodeBitmapChecksum, lo: 0x1A, hi: 0x3A)
        split32(s.unusedInodeTail, lo: 0x1C, hi: 0x32)
        var crc = Ext4Checksums.crc32c(filesystemSeed, le32: UInt32(group))
        crc = Ext4Checksums.crc32c(crc, d)
        d.putLE16(UInt16(truncatingIfNeeded: crc), at: 0x1E)
        return d
    }
}
