import WispCore

/// One on-disk inode, decoded and (with metadata_csum) verified. Keeps its raw bytes for
/// the parts decoded on demand: i_block (extent root, block map, inline data, fast
/// symlink, device number) and the in-inode extended attributes.
struct Ext4Inode: Sendable {
    static let goodOldSize = 128
    static let iBlockOffset = 0x28
    static let iBlockSize = 60

    // i_flags
    static let indexFlag: UInt32 = 0x1000
    static let encryptFlag: UInt32 = 0x800
    static let hugeFileFlag: UInt32 = 0x40000
    static let extentsFlag: UInt32 = 0x80000
    static let eaInodeFlag: UInt32 = 0x200000
    static let inlineDataFlag: UInt32 = 0x1000_0000

    let number: UInt32
    let raw: [UInt8]
    /// Byte offset of the inode on the device, for error messages.
    let offset: UInt64
    let mode: UInt16
    let uid: UInt32
    let gid: UInt32
    let size: UInt64
    let linksCount: UInt16
    let flags: UInt32
    /// i_blocks in 512-byte units whatever the on-disk unit.
    let sectors: UInt64
    let fileACL: UInt64
    let generation: UInt32
    let extraSize: Int
    let accessTime: Timestamp
    let modificationTime: Timestamp
    let changeTime: Timestamp
    /// The seed for this inode's extent-block and directory-block checksums.
    let checksumSeed: UInt32

    init(number: UInt32, raw: [UInt8], offset: UInt64, superblock sb: Ext4Superblock, source: String) throws {
        let structure = "ext4 inode \(number)"
        let r = ByteReader(raw, source: source, structure: structure, baseOffset: offset)
        self.number = number
        self.raw = raw
        self.offset = offset
        generation = try r.u32le(0x64)

        if raw.count > Self.goodOldSize {
            extraSize = Int(try r.u16le(0x80))
            guard extraSize & 3 == 0, Self.goodOldSize + extraSize <= raw.count else {
                throw r.error(at: 0x80, "extra inode size \(extraSize) is not a multiple of 4 that fits in a \(raw.count)-byte inode")
            }
        } else {
            extraSize = 0
        }

        checksumSeed = Ext4Checksums.inodeSeed(filesystemSeed: sb.checksumSeed, inode: number, generation: generation)
        if sb.features.metadataChecksums && sb.hasLinuxOSFields {
            try Self.verifyChecksum(r, seed: checksumSeed, extraSize: extraSize)
        }

        mode = try r.u16le(0x0)
        let linux = sb.hasLinuxOSFields
        uid = UInt32(try r.u16le(0x2)) | (linux ? UInt32(try r.u16le(0x78)) << 16 : 0)
        gid = UInt32(try r.u16le(0x18)) | (linux ? UInt32(try r.u16le(0x7A)) << 16 : 0)
        size = UInt64(try r.u32le(0x4)) | UInt64(try r.u32le(0x6C)) << 32
        linksCount = try r.u16le(0x1A)
        flags = try r.u32le(0x20)
        fileACL = UInt64(try r.u32le(0x68)) | (linux ? UInt64(try r.u16le(0x76)) << 32 : 0)

        var blocks = UInt64(try r.u32le(0x1C))
        if sb.features.hasReadOnlyCompatible(Ext4Features.hugeFile) && linux {
            blocks |= UInt64(try r.u16le(0x74)) << 32
            if flags & Self.hugeFileFlag != 0 {
                // huge_file inodes count i_blocks in filesystem blocks.
                blocks = blocks.multipliedReportingOverflow(by: UInt64(sb.blockSize / 512)).partialValue
            }
        }
        sectors = blocks

        accessTime = try Self.timestamp(r, 0x8, 0x8C, extraSize: extraSize)
        changeTime = try Self.timestamp(r, 0xC, 0x84, extraSize: extraSize)
        modificationTime = try Self.timestamp(r, 0x10, 0x88, extraSize: extraSize)
    }

    /// A signed 32-bit seconds field, extended (when the inode's extra fields reach it) by
    /// a word whose low two bits carry seconds past 2038 and the rest nanoseconds.
    private static func timestamp(_ r: ByteReader, _ base: Int, _ extra: Int, extraSize: Int) throws -> Timestamp {
        let seconds = Int64(Int32(bitPattern: try r.u32le(base)))
        guard goodOldSize + extraSize >= extra + 4 else { return Timestamp(seconds: seconds) }
        let bits = try r.u32le(extra)
        return Timestamp(seconds: seconds + (Int64(bits & 3) << 32), nanoseconds: min(bits >> 2, 999_999_999))
    }

    /// The kernel's `ext4_inode_csum`: the whole inode with i_checksum_lo (and
    /// i_checksum_hi, when the extra fields reach it) taken as zero. Only the low 16 bits
    /// are stored when the inode has no room for the high half.
    private static func verifyChecksum(_ r: ByteReader, seed: UInt32, extraSize: Int) throws {
        let raw = r.bytes
        let hasHigh = raw.count > goodOldSize && goodOldSize + extraSize >= 0x84
        var crc = Ext4Checksums.crc32c(seed, raw[0..<0x7C])
        crc = Ext4Checksums.crc32c(crc, [0, 0])
        crc = Ext4Checksums.crc32c(crc, raw[0x7E..<goodOldSize])
        if raw.count > goodOldSize {
            crc = Ext4Checksums.crc32c(crc, raw[goodOldSize..<0x82])
            var next = 0x82
            if hasHigh {
                crc = Ext4Checksums.crc32c(crc, [0, 0])
                next = 0x84
            }
            crc = Ext4Checksums.crc32c(crc, raw[next..<raw.count])
        }
        var stored = UInt32(try r.u16le(0x7C))
        if hasHigh {
            stored |= UInt32(try r.u16le(0x82)) << 16
        } else {
            crc &= 0xFFFF
        }
        guard stored == crc else {
            throw r.error(at: 0x7C, "inode checksum mismatch: stored \(Ext4Checksums.hex(stored)), computed \(Ext4Checksums.hex(crc))")
        }
    }

    var type: FileType { FileType(mode: UInt32(mode)) }
    var permissions: UInt32 { UInt32(mode) & 0o7777 }
    var usesExtents: Bool { flags & Self.extentsFlag != 0 }
    var hasInlineData: Bool { flags & Self.inlineDataFlag != 0 }
    var isHashIndexed: Bool { flags & Self.indexFlag != 0 }
    var isEncrypted: Bool { flags & Self.encryptFlag != 0 }
    var isExtendedAttributeInode: Bool { flags & Self.eaInodeFlag != 0 }

    /// The 60 bytes of i_block.
    var iBlock: ArraySlice<UInt8> { raw[Self.iBlockOffset..<(Self.iBlockOffset + Self.iBlockSize)] }

    /// i_block[index] as a little-endian 32-bit word.
    func blockWord(_ index: Int) -> UInt32 {
        let o = Self.iBlockOffset + 4 * index
        return UInt32(raw[o]) | UInt32(raw[o + 1]) << 8 | UInt32(raw[o + 2]) << 16 | UInt32(raw[o + 3]) << 24
    }

    /// (major, minor) of a character or block device: the old 8:8 encoding in i_block[0],
    /// or the new 12:20 one in i_block[1].
    var deviceNumbers: (major: UInt32, minor: UInt32) {
        let old = blockWord(0)
        if old != 0 { return ((old >> 8) & 0xFF, old & 0xFF) }
        let new = blockWord(1)
        return ((new & 0xFFF00) >> 8, (new & 0xFF) | ((new >> 12) & 0xFFF00))
    }

    /// Where the in-inode extended attribute area starts (its 4-byte magic), if the inode
    /// has one.
    var inodeXattrOffset: Int? {
        let start = Self.goodOldSize + extraSize
        guard raw.count > Self.goodOldSize, start + 4 <= raw.count else { return nil }
        return start
    }
}
