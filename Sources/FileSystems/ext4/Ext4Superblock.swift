import WispCore

/// The ext2/3/4 superblock (1024 bytes at byte 1024 of the device), decoded and checked
/// against itself and the device before anything else is trusted.
public struct Ext4Superblock: Sendable {
    public static let offset: UInt64 = 1024
    public static let size = 1024
    static let magic: UInt16 = 0xEF53

    public var inodesCount: UInt32
    public var blocksCount: UInt64
    public var firstDataBlock: UInt32
    public var blockSize: Int
    /// Allocation unit: the block size, or larger with bigalloc.
    public var clusterSize: Int
    public var blocksPerGroup: UInt32
    public var inodesPerGroup: UInt32
    public var state: UInt16
    public var creatorOS: UInt32
    public var revision: UInt32
    public var firstInode: UInt32
    public var inodeSize: Int
    public var features: Ext4Features
    public var uuidBytes: [UInt8]
    public var volumeName: String
    public var descriptorSize: Int
    public var firstMetaBlockGroup: UInt32
    public var backupGroups: (UInt32, UInt32)
    public var groupCount: UInt32
    /// The seed every crc32c metadata checksum starts from: s_checksum_seed with
    /// metadata_csum_seed, else crc32c(~0, uuid).
    public var checksumSeed: UInt32

    /// Decodes and validates `bytes` (the 1024 superblock bytes) read from `source`, a
    /// device of `deviceSize` bytes.
    public init(_ bytes: [UInt8], source: String, deviceSize: UInt64) throws {
        let r = ByteReader(bytes, source: source, structure: "ext4 superblock", baseOffset: Self.offset)
        guard r.count >= Self.size else { throw r.error(at: 0, "needs \(Self.size) bytes, got \(r.count)") }
        let magic = try r.u16le(0x38)
        guard magic == Self.magic else {
            throw r.error(at: 0x38, "magic is 0x\(String(magic, radix: 16)), expected 0xef53")
        }
        features = Ext4Features(compatible: try r.u32le(0x5C), incompatible: try r.u32le(0x60),
                                readOnlyCompatible: try r.u32le(0x64))
        let unsupported = features.unsupportedIncompatibleNames
        guard unsupported.isEmpty else {
            throw WispError.unsupported(source, "ext4 filesystem uses incompatible features Wisp cannot read: \(unsupported.joined(separator: ", "))")
        }

        if features.metadataChecksums {
            let type = try r.u8(0x175)
            guard type == 1 else { throw r.error(at: 0x175, "checksum type is \(type), expected 1 (crc32c)") }
            let stored = try r.u32le(0x3FC)
            let computed = Ext4Checksums.crc32c(0xFFFF_FFFF, try r.slice(0, 0x3FC))
            guard stored == computed else {
                throw r.error(at: 0x3FC, "superblock checksum mismatch: stored \(Ext4Checksums.hex(stored)), computed \(Ext4Checksums.hex(computed))")
            }
        }

        revision = try r.u32le(0x4C)
        guard revision <= 1 else { throw r.error(at: 0x4C, "revision level \(revision) is newer than the 1 Wisp knows") }
        let logBlockSize = try r.u32le(0x18)
        guard logBlockSize <= 6 else {
            throw r.error(at: 0x18, "log block size \(logBlockSize) is outside 0...6 (1 KiB to 64 KiB blocks)")
        }
        blockSize = 1024 << Int(logBlockSize)

        if revision == 0 {
            inodeSize = 128
            firstInode = 11
        } else {
            inodeSize = Int(try r.u16le(0x58))
            firstInode = try r.u32le(0x54)
            guard inodeSize >= 128, inodeSize <= blockSize, inodeSize & (inodeSize - 1) == 0 else {
                throw r.error(at: 0x58, "inode size \(inodeSize) is not a power of two between 128 and the block size \(blockSize)")
            }
            guard firstInode >= 11 else { throw r.error(at: 0x54, "first non-reserved inode \(firstInode) is below 11") }
        }

        inodesCount = try r.u32le(0x0)
        let is64 = features.hasIncompatible(Ext4Features.is64Bit)
        blocksCount = UInt64(try r.u32le(0x4)) | (is64 ? UInt64(try r.u32le(0x150)) << 32 : 0)
        firstDataBlock = try r.u32le(0x14)
        blocksPerGroup = try r.u32le(0x20)
        inodesPerGroup = try r.u32le(0x28)
        state = try r.u16le(0x3A)
        creatorOS = try r.u32le(0x48)

        let bitsPerBlock = UInt32(blockSize) * 8
        clusterSize = blockSize
        if features.hasReadOnlyCompatible(Ext4Features.bigalloc) {
            let logClusterSize = try r.u32le(0x1C)
            let clustersPerGroup = try r.u32le(0x24)
            guard logClusterSize >= logBlockSize, logClusterSize - logBlockSize <= 16 else {
                throw r.error(at: 0x1C, "log cluster size \(logClusterSize) is smaller than the log block size or absurd")
            }
            guard clustersPerGroup > 0, clustersPerGroup <= bitsPerBlock else {
                throw r.error(at: 0x24, "clusters per group \(clustersPerGroup) is outside 1...\(bitsPerBlock)")
            }
            let expected = UInt64(clustersPerGroup) << UInt64(logClusterSize - logBlockSize)
            guard UInt64(blocksPerGroup) == expected else {
                throw r.error(at: 0x20, "blocks per group \(blocksPerGroup) does not match clusters per group × cluster ratio (\(expected))")
            }
            guard logClusterSize <= 24 else { throw r.error(at: 0x1C, "log cluster size \(logClusterSize) is absurd") }
            clusterSize = 1024 << Int(logClusterSize)
        } else {
            guard blocksPerGroup > 0, blocksPerGroup <= bitsPerBlock else {
                throw r.error(at: 0x20, "blocks per group \(blocksPerGroup) is outside 1...\(bitsPerBlock)")
            }
        }
        let inodesPerBlock = UInt32(blockSize / inodeSize)
        guard inodesPerGroup >= inodesPerBlock, inodesPerGroup <= bitsPerBlock else {
            throw r.error(at: 0x28, "inodes per group \(inodesPerGroup) is outside \(inodesPerBlock)...\(bitsPerBlock)")
        }

        if blockSize > 1024 {
            guard firstDataBlock == 0 else { throw r.error(at: 0x14, "first data block is \(firstDataBlock), expected 0 with \(blockSize)-byte blocks") }
        } else {
            guard firstDataBlock <= 1 else { throw r.error(at: 0x14, "first data block is \(firstDataBlock), expected 0 or 1") }
        }
        guard blocksCount > UInt64(firstDataBlock) else {
            throw r.error(at: 0x4, "block count \(blocksCount) does not exceed the first data block \(firstDataBlock)")
        }
        let (fsBytes, overflow) = blocksCount.multipliedReportingOverflow(by: UInt64(blockSize))
        guard !overflow, fsBytes <= deviceSize else {
            throw r.error(at: 0x4, "\(blocksCount) blocks of \(blockSize) bytes do not fit in the \(deviceSize)-byte device")
        }
        let groups = (blocksCount - UInt64(firstDataBlock) + UInt64(blocksPerGroup) - 1) / UInt64(blocksPerGroup)
        guard groups <= UInt64(UInt32.max), UInt64(inodesCount) == groups * UInt64(inodesPerGroup) else {
            throw r.error(at: 0x0, "inode count \(inodesCount) is not \(groups) groups × \(inodesPerGroup) inodes per group")
        }
        groupCount = UInt32(groups)

        if is64 {
            descriptorSize = Int(try r.u16le(0xFE))
            guard descriptorSize >= 64, descriptorSize <= 1024, descriptorSize & (descriptorSize - 1) == 0 else {
                throw r.error(at: 0xFE, "group descriptor size \(descriptorSize) is not a power of two in 64...1024")
            }
        } else {
            descriptorSize = 32
        }
        firstMetaBlockGroup = try r.u32le(0x104)
        if features.hasIncompatible(Ext4Features.metaBG) {
            let descriptorBlocks = (groups * UInt64(descriptorSize) + UInt64(blockSize) - 1) / UInt64(blockSize)
            guard UInt64(firstMetaBlockGroup) <= descriptorBlocks else {
                throw r.error(at: 0x104, "first meta block group \(firstMetaBlockGroup) exceeds the \(descriptorBlocks) descriptor blocks")
            }
        }
        backupGroups = (try r.u32le(0x24C), try r.u32le(0x250))

        uuidBytes = try r.array(0x68, 16)
        volumeName = try r.cString(0x78, maxLength: 16)
        if features.hasIncompatible(Ext4Features.csumSeed) {
            checksumSeed = try r.u32le(0x270)
        } else {
            checksumSeed = Ext4Checksums.crc32c(0xFFFF_FFFF, uuidBytes)
        }
    }

    /// The UUID as lowercase 8-4-4-4-12 hex, or nil when it is all zeros.
    public var uuid: String? {
        guard uuidBytes.contains(where: { $0 != 0 }) else { return nil }
        let hex = uuidBytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }
        return [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]]
            .map { $0.joined() }.joined(separator: "-")
    }

    public var label: String? { volumeName.isEmpty ? nil : volumeName }

    /// Inode table blocks one group occupies.
    var inodeTableBlocks: UInt64 {
        (UInt64(inodesPerGroup) * UInt64(inodeSize) + UInt64(blockSize) - 1) / UInt64(blockSize)
    }

    var hasLinuxOSFields: Bool { creatorOS == 0 }

    /// Whether `group` holds a copy of the superblock (and, without meta_bg, of the
    /// descriptor table): every group without sparse_super; 0, 1 and powers of 3, 5, 7
    /// with it; group 0 and the two listed backups with sparse_super2.
    func groupHasSuperblock(_ group: UInt64) -> Bool {
        if group == 0 { return true }
        if features.hasCompatible(Ext4Features.sparseSuper2) {
            return group == UInt64(backupGroups.0) || group == UInt64(backupGroups.1)
        }
        if group <= 1 || !features.hasReadOnlyCompatible(Ext4Features.sparseSuper) { return true }
        if group & 1 == 0 { return false }
        for base: UInt64 in [3, 5, 7] {
            var power = base
            while power < group { power *= base }
            if power == group { return true }
        }
        return false
    }

    func groupFirstBlock(_ group: UInt64) -> UInt64 {
        group * UInt64(blocksPerGroup) + UInt64(firstDataBlock)
    }

    /// The block holding the `index`th block of group descriptors (the kernel's
    /// `descriptor_loc`): right after the primary superblock, or with meta_bg, at the
    /// start of the first group of each meta group (after its superblock backup).
    func descriptorBlockLocation(_ index: UInt64) -> UInt64 {
        let superblockBlock: UInt64 = blockSize == 1024 ? 1 : 0
        if !features.hasIncompatible(Ext4Features.metaBG) || index < UInt64(firstMetaBlockGroup) {
            return superblockBlock + index + 1
        }
        let group = index * UInt64(blockSize / descriptorSize)
        var hasSuper: UInt64 = groupHasSuperblock(group) ? 1 : 0
        if blockSize == 1024 && index == 0 && firstDataBlock == 0 { hasSuper += 1 }
        return groupFirstBlock(group) + hasSuper
    }
}
