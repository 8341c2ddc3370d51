import WispCore

/// One 256-byte inode as the writer lays it out: Linux OSD fields (32-bit owners, 48-bit
/// i_blocks), 32 bytes of extra fields (nanosecond and post-2038 time bits, crtime,
/// checksum high half), then the in-inode extended attribute area.
struct Ext4WriterInode: Sendable {
    static let size = Ext4WriterGeometry.inodeSize
    static let extraSize = 32
    /// Where the in-inode attribute area (magic first) starts.
    static let xattrAreaOffset = Ext4Inode.goodOldSize + extraSize
    static let xattrAreaSize = size - xattrAreaOffset

    // i_mode type bits
    static let regularType: UInt16 = 0o100000
    static let directoryType: UInt16 = 0o040000
    static let symlinkType: UInt16 = 0o120000
    static let characterDeviceType: UInt16 = 0o020000
    static let blockDeviceType: UInt16 = 0o060000
    static let fifoType: UInt16 = 0o010000
    static let socketType: UInt16 = 0o140000

    /// The range of seconds the 32-bit field plus two epoch bits holds without e2fsck
    /// reading it as a mis-encoded pre-1970 time: 1901-12-13 to 2310-04-04.
    static let earliestSeconds: Int64 = -(1 << 31)
    static let latestSeconds: Int64 = 3 * (1 << 32) - (1 << 31) - 1

    var mode: UInt16
    var uid: UInt32 = 0
    var gid: UInt32 = 0
    var size: UInt64 = 0
    var accessTime = Timestamp(seconds: 0)
    var changeTime = Timestamp(seconds: 0)
    var modificationTime = Timestamp(seconds: 0)
    var creationTime = Timestamp(seconds: 0)
    var linksCount: UInt16 = 1
    /// i_blocks in 512-byte sectors.
    var sectors: UInt64 = 0
    var flags: UInt32 = 0
    var iBlock = [UInt8](repeating: 0, count: Ext4Inode.iBlockSize)
    var fileACL: UInt64 = 0
    /// The attribute area's bytes (magic, entries, values), at most `xattrAreaSize`.
    var inlineXattrs: [UInt8] = []

    init(mode: UInt16) {
        self.mode = mode
    }

    init(mode: UInt16, metadata: Ext4EntryMetadata) {
        self.mode = mode | UInt16(metadata.permissions & 0o7777)
        uid = metadata.uid
        gid = metadata.gid
        accessTime = metadata.accessTime
        changeTime = metadata.changeTime
        modificationTime = metadata.modificationTime
        creationTime = metadata.creationTime
    }

    /// The inode's bytes with its checksum.
    func encoded(number: UInt32, filesystemSeed: UInt32) -> [UInt8] {
        var raw = [UInt8](repeating: 0, count: Self.size)
        raw.putLE16(mode, at: 0x0)
        raw.putLE16(UInt16(truncatingIfNeeded: uid), at: 0x2)
        raw.putLE32(UInt32(truncatingIfNeeded: size), at: 0x4)
        let (atime, atimeExtra) = Self.encodeTime(accessTime)
        let (ctime, ctimeExtra) = Self.encodeTime(changeTime)
        let (mtime, mtimeExtra) = Self.encodeTime(modificationTime)
        let (crtime, crtimeExtra) = Self.encodeTime(creationTime)
        raw.putLE32(atime, at: 0x8)
        raw.putLE32(ctime, at: 0xC)
        raw.putLE32(mtime, at: 0x10)
        raw.putLE16(UInt16(truncatingIfNeeded: gid), at: 0x18)
        raw.putLE16(linksCount, at: 0x1A)
        raw.putLE32(UInt32(truncatingIfNeeded: sectors), at: 0x1C)
        raw.putLE32(flags, at: 0x20)
        raw.replaceSubrange(Ext4Inode.iBlockOffset..<(Ext4Inode.iBlockOffset + Ext4Inode.iBlockSize), with: iBlock)
        raw.putLE32(UInt32(truncatingIfNeeded: fileACL), at: 0x68)
        raw.putLE32(UInt32(truncatingIfNeeded: size >> 32), at: 0x6C)
        raw.putLE16(UInt16(truncatingIfNeeded: sectors >> 32), at: 0x74)
        raw.putLE16(UInt16(truncatingIfNeeded: fileACL >> 32), at: 0x76)
        raw.putLE16(UInt16(truncatingIfNeeded: uid >> 16), at: 0x78)
        raw.putLE16(UInt16(truncatingIfNeeded: gid >> 16), at: 0x7A)
        raw.putLE16(UInt16(Self.extraSize), at: 0x80)
        raw.putLE32(ctimeExtra, at: 0x84)
        raw.putLE32(mtimeExtra, at: 0x88)
        raw.putLE32(atimeExtra, at: 0x8C)
        raw.putLE32(crtime, at: 0x90)
        raw.putLE32(crtimeExtra, at: 0x94)
        if !inlineXattrs.isEmpty {
            raw.replaceSubrange(Self.xattrAreaOffset..<(Self.xattrAreaOffset + inlineXattrs.count), with: inlineXattrs)
        }
        Self.setChecksum(&raw, number: number, filesystemSeed: filesystemSeed)
        return raw
    }

    /// A reserved inode (1, 3...7, 9, 10) as mke2fs writes it: zeros and a checksum.
    static func reserved(number: UInt32, filesystemSeed: UInt32) -> [UInt8] {
        var raw = [UInt8](repeating: 0, count: size)
        setChecksum(&raw, number: number, filesystemSeed: filesystemSeed)
        return raw
    }

    /// The kernel's `ext4_inode_csum_set` (generation 0): crc32c over the inode with both
    /// checksum halves zero; the high half exists only when i_extra_isize reaches it.
    static func setChecksum(_ raw: inout [UInt8], number: UInt32, filesystemSeed: UInt32) {
        let extra = Int(UInt16(raw[0x80]) | UInt16(raw[0x81]) << 8)
        let hasHigh = Ext4Inode.goodOldSize + extra >= 0x84
        raw.putLE16(0, at: 0x7C)
        if hasHigh { raw.putLE16(0, at: 0x82) }
        // Every inode the writer makes has generation 0.
        let seed = Ext4Checksums.inodeSeed(filesystemSeed: filesystemSeed, inode: number, generation: 0)
        let crc = Ext4Checksums.crc32c(seed, raw)
        raw.putLE16(UInt16(truncatingIfNeeded: crc), at: 0x7C)
        if hasHigh { raw.putLE16(UInt16(truncatingIfNeeded: crc >> 16), at: 0x82) }
    }

    /// The low 32 bits of the seconds (signed), and the extra word: two epoch bits that
    /// extend them, then the nanoseconds.
    static func encodeTime(_ time: Timestamp) -> (UInt32, UInt32) {
        let low = Int32(truncatingIfNeeded: time.seconds)
        let epoch = UInt32(truncatingIfNeeded: (time.seconds - Int64(low)) >> 32) & 3
        return (UInt32(bitPattern: low), epoch | (time.nanoseconds << 2))
    }

    static func checkTime(_ time: Timestamp, _ what: String, path: String) throws {
        guard time.seconds >= earliestSeconds, time.seconds <= latestSeconds else {
            throw WispError.invalidArgument("\(path): \(what) \(time.seconds) is outside the range ext4 stores (\(earliestSeconds)...\(latestSeconds) seconds)")
        }
        guard time.nanoseconds < 1_000_000_000 else {
            throw WispError.invalidArgument("\(path): \(what) has \(time.nanoseconds) nanoseconds, more than a second")
        }
    }
}
