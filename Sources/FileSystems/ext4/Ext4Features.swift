/// The feature bits of an ext2/3/4 superblock, with the names mke2fs and the kernel use.
/// Incompatible features change the on-disk format: a reader must refuse one it does not
/// know. Read-only-compatible features only matter to writers, so a reader proceeds.
public struct Ext4Features: Sendable, Equatable {
    public var compatible: UInt32
    public var incompatible: UInt32
    public var readOnlyCompatible: UInt32

    // COMPAT
    static let hasJournal: UInt32 = 0x4
    static let extAttr: UInt32 = 0x8
    static let dirIndex: UInt32 = 0x20
    static let sparseSuper2: UInt32 = 0x200
    static let orphanFile: UInt32 = 0x1000

    // INCOMPAT
    static let compression: UInt32 = 0x1
    static let filetype: UInt32 = 0x2
    static let recover: UInt32 = 0x4
    static let journalDev: UInt32 = 0x8
    static let metaBG: UInt32 = 0x10
    static let extents: UInt32 = 0x40
    static let is64Bit: UInt32 = 0x80
    static let mmp: UInt32 = 0x100
    static let flexBG: UInt32 = 0x200
    static let eaInode: UInt32 = 0x400
    static let dirData: UInt32 = 0x1000
    static let csumSeed: UInt32 = 0x2000
    static let largeDir: UInt32 = 0x4000
    static let inlineData: UInt32 = 0x8000
    static let encrypt: UInt32 = 0x10000
    static let casefold: UInt32 = 0x20000

    // RO_COMPAT
    static let sparseSuper: UInt32 = 0x1
    static let largeFile: UInt32 = 0x2
    static let btreeDir: UInt32 = 0x4
    static let hugeFile: UInt32 = 0x8
    static let gdtCsum: UInt32 = 0x10
    static let bigalloc: UInt32 = 0x200
    static let metadataCsum: UInt32 = 0x400

    /// Incompatible features this reader understands. Compression (never merged),
    /// journal_dev (an external journal holds no files) and dirdata (Lustre) are not.
    static let supportedIncompatible: UInt32 = filetype | recover | metaBG | extents | is64Bit | mmp
        | flexBG | eaInode | csumSeed | largeDir | inlineData | encrypt | casefold

    static let incompatibleNames: [UInt32: String] = [
        0x1: "compression", 0x2: "filetype", 0x4: "needs_recovery", 0x8: "journal_dev",
        0x10: "meta_bg", 0x40: "extent", 0x80: "64bit", 0x100: "mmp", 0x200: "flex_bg",
        0x400: "ea_inode", 0x1000: "dirdata", 0x2000: "metadata_csum_seed", 0x4000: "large_dir",
        0x8000: "inline_data", 0x10000: "encrypt", 0x20000: "casefold",
    ]

    public func hasCompatible(_ bit: UInt32) -> Bool { compatible & bit != 0 }
    public func hasIncompatible(_ bit: UInt32) -> Bool { incompatible & bit != 0 }
    public func hasReadOnlyCompatible(_ bit: UInt32) -> Bool { readOnlyCompatible & bit != 0 }

    /// Names of the incompatible features set here that this reader cannot read, empty
    /// when it can read everything.
    public var unsupportedIncompatibleNames: [String] {
        let unsupported = incompatible & ~Self.supportedIncompatible
        return (0..<32).compactMap { bit -> String? in
            let mask = UInt32(1) << UInt32(bit)
            guard unsupported & mask != 0 else { return nil }
            return Self.incompatibleNames[mask] ?? "unknown feature 0x\(String(mask, radix: 16))"
        }
    }

    public var metadataChecksums: Bool { hasReadOnlyCompatible(Self.metadataCsum) }
    /// Group descriptors carry crc16 checksums (the older scheme metadata_csum replaced).
    public var groupDescriptorChecksums: Bool { hasReadOnlyCompatible(Self.gdtCsum) && !metadataChecksums }

    /// What blkid would call this filesystem: ext2 without a journal and with nothing
    /// ext2 lacks, ext3 with a journal and nothing ext3 lacks, ext4 otherwise.
    public var typeName: String {
        let ext3Incompatible = Self.filetype | Self.recover | Self.metaBG
        let ext3ReadOnly = Self.sparseSuper | Self.largeFile | Self.btreeDir
        if incompatible & ~ext3Incompatible != 0 || readOnlyCompatible & ~ext3ReadOnly != 0 {
            return "ext4"
        }
        return hasCompatible(Self.hasJournal) ? "ext3" : "ext2"
    }
}
