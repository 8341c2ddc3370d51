/// The internal journal's first block: a jbd2 v2 superblock (big-endian) describing an
/// empty, clean journal, exactly as mke2fs writes it (no journal features, sequence 1,
/// start 0, one user: this filesystem).
enum Ext4WriterJournal {
    static let inode: UInt32 = 8
    static let magic: UInt32 = 0xC03B_3998
    static let superblockV2: UInt32 = 4

    static func superblock(blocks: UInt64, uuid: [UInt8]) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: Ext4WriterGeometry.blockSize)
        block.putBE32(magic, at: 0x0)
        block.putBE32(superblockV2, at: 0x4)
        block.putBE32(UInt32(Ext4WriterGeometry.blockSize), at: 0xC)  // s_blocksize
        block.putBE32(UInt32(blocks), at: 0x10)                       // s_maxlen
        block.putBE32(1, at: 0x14)                                    // s_first
        block.putBE32(1, at: 0x18)                                    // s_sequence
        block.replaceSubrange(0x30..<0x40, with: uuid)                // s_uuid
        block.putBE32(1, at: 0x40)                                    // s_nr_users
        return block
    }
}
