import WispCore

/// The largest file an ext2/3/4 filesystem can hold, computed the way the kernel's
/// `ext4_max_size` and `ext4_max_bitmap_size` do. A size beyond it is not a sparse file but
/// a corrupt inode: reading it would plan a stream of zeros no real file has (the campaign in
/// issue 16 set i_size to 2^62 and `wisp fs cat` streamed zeros until killed).
struct Ext4FileSizeLimit: Sendable, Equatable {
    var bytes: UInt64
    /// What decided the limit, for the error message.
    var reason: String

    /// Without huge_file, i_blocks is a 32-bit count of 512-byte sectors, so no file may
    /// own (2^32 - 1) sectors' worth of blocks or more.
    static func forInode(extentMapped: Bool, blockSize: Int, hugeFile: Bool) -> Ext4FileSizeLimit {
        let size = UInt64(blockSize)
        let shift = UInt64(blockSize.trailingZeroBitCount)
        let sectorLimit: UInt64 = hugeFile ? UInt64.max : (((1 << 32) - 1) >> (shift - 9)) << shift
        let mapLimit: UInt64
        let mapping: String
        if extentMapped {
            // ee_block is 32 bits; the kernel keeps one block back so ee_len can reach the end.
            mapLimit = ((1 << 32) - 1) << shift
            mapping = "extent-mapped"
        } else {
            // 12 direct blocks, then single, double and triple indirect blocks of 4-byte
            // pointers; logical block numbers stay below 2^32.
            let perBlock = size / 4
            let blocks = min(12 + perBlock + perBlock * perBlock + perBlock * perBlock * perBlock, (1 << 32) - 1)
            mapLimit = blocks << shift
            mapping = "block-mapped"
        }
        let limit = min(mapLimit, sectorLimit)
        return Ext4FileSizeLimit(bytes: limit, reason: "\(mapping), \(blockSize)-byte blocks, \(hugeFile ? "with" : "without") huge_file")
    }
}

extension Ext4Reader {
    /// The inode's size, refused with the limit named when no ext4 file can be that large.
    func checkedSize(_ inode: Ext4Inode) throws -> UInt64 {
        // Inline data and fast symlinks are bounded by the inode itself (checked on read).
        guard !inode.hasInlineData, !isFastSymlink(inode) else { return inode.size }
        let limit = Ext4FileSizeLimit.forInode(extentMapped: inode.usesExtents, blockSize: superblock.blockSize,
                                               hugeFile: superblock.features.hasReadOnlyCompatible(Ext4Features.hugeFile))
        guard inode.size <= limit.bytes else {
            throw WispError.corrupt(device.name, "ext4 inode \(inode.number)", at: inode.offset + 4,
                                    "size \(inode.size) exceeds the largest file this filesystem can hold (\(limit.bytes) bytes: \(limit.reason))")
        }
        return inode.size
    }
}
