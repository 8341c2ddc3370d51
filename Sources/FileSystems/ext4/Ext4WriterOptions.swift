import Foundation
import WispCore

/// The directory hash an htree-indexed directory is ordered by (`s_def_hash_version`).
/// Both are computed with the "signed char" variant, which the superblock records.
public enum Ext4HashVersion: String, Sendable, CaseIterable {
    case halfMD4 = "half_md4"
    case tea

    var code: UInt8 { self == .halfMD4 ? 1 : 2 }
}

/// How an image being written looks as a whole: its size, inode count, identity and the
/// few choices mke2fs would otherwise make.
public struct Ext4WriterOptions: Sendable {
    /// Filesystem size in bytes (rounded down to whole 4 KiB blocks; a tail too small to
    /// be a block group is left unused). nil: the whole target device. Required when
    /// writing to a path.
    public var size: UInt64?
    /// Inodes wanted (rounded up to fill whole inode-table blocks in every group). nil:
    /// one per 16 KiB, mke2fs's default ratio.
    public var inodeCount: UInt32?
    public var uuid: UUID
    /// At most 16 bytes of UTF-8.
    public var label: String
    public var hashVersion: Ext4HashVersion
    /// `s_hash_seed`, which directory hashes start from.
    public var hashSeed: UUID
    /// Creation time of the filesystem, and the times of directories that are made
    /// implicitly because an entry below them came first.
    public var timestamp: Timestamp
    /// Blocks kept for root (`s_r_blocks_count`), 0...50 percent.
    public var reservedBlocksPercent: Int
    /// An internal jbd2 journal (inode 8) sized as mke2fs sizes it.
    public var journal: Bool
    /// Whole blocks of zeros in file data become holes (as `mke2fs -d` and `cp
    /// --sparse=always` do): they take no space and read back as zeros.
    public var zeroBlocksAsHoles: Bool

    public init(size: UInt64? = nil, inodeCount: UInt32? = nil, uuid: UUID = UUID(), label: String = "",
                hashVersion: Ext4HashVersion = .halfMD4, hashSeed: UUID = UUID(),
                timestamp: Timestamp = Timestamp(seconds: Int64(Date().timeIntervalSince1970)),
                reservedBlocksPercent: Int = 0, journal: Bool = true, zeroBlocksAsHoles: Bool = true) {
        self.size = size
        self.inodeCount = inodeCount
        self.uuid = uuid
        self.label = label
        self.hashVersion = hashVersion
        self.hashSeed = hashSeed
        self.timestamp = timestamp
        self.reservedBlocksPercent = reservedBlocksPercent
        self.journal = journal
        self.zeroBlocksAsHoles = zeroBlocksAsHoles
    }
}

/// What an entry carries besides its type and contents: the fields a tar header (with
/// PAX extensions) records.
public struct Ext4EntryMetadata: Sendable, Equatable {
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    public var permissions: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var accessTime: Timestamp
    public var modificationTime: Timestamp
    public var changeTime: Timestamp
    /// Birth time (`i_crtime`).
    public var creationTime: Timestamp
    /// Extended attributes by full name: `user.*`, `trusted.*`, `security.*`
    /// (`security.capability`, `security.selinux`), and POSIX ACLs as
    /// `system.posix_acl_access` / `system.posix_acl_default` in the xattr (version 2) form.
    public var xattrs: [String: [UInt8]]

    /// Times not given default to `modificationTime`.
    public init(permissions: UInt32, uid: UInt32 = 0, gid: UInt32 = 0, modificationTime: Timestamp,
                accessTime: Timestamp? = nil, changeTime: Timestamp? = nil, creationTime: Timestamp? = nil,
                xattrs: [String: [UInt8]] = [:]) {
        self.permissions = permissions
        self.uid = uid
        self.gid = gid
        self.modificationTime = modificationTime
        self.accessTime = accessTime ?? modificationTime
        self.changeTime = changeTime ?? modificationTime
        self.creationTime = creationTime ?? modificationTime
        self.xattrs = xattrs
    }
}

/// Entries that are nothing but an inode.
public enum Ext4SpecialFile: Sendable, Equatable {
    /// major < 4096, minor < 2^20 (Linux's dev_t).
    case characterDevice(major: UInt32, minor: UInt32)
    case blockDevice(major: UInt32, minor: UInt32)
    case fifo
    case socket
}

/// What `Ext4Writer.finish()` made.
public struct Ext4WriterSummary: Sendable, Equatable {
    public var blockSize: Int
    public var blocksCount: UInt64
    public var freeBlocks: UInt64
    public var inodesCount: UInt32
    public var freeInodes: UInt32
    public var groupCount: Int
    public var journalBlocks: UInt64
}
