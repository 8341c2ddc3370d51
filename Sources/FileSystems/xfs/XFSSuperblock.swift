import WispCore

/// The XFS primary superblock (sector 0 of AG 0), validated against itself and the device.
/// Every geometry field that later address arithmetic relies on is checked here once, so
/// the rest of the reader can compute offsets knowing they stay inside the filesystem.
struct XFSSuperblock: Sendable {
    var blockSize: UInt32
    var blockLog: UInt8
    var dataBlocks: UInt64
    var uuid: [UInt8]
    /// The UUID stamped into v5 metadata blocks: sb_meta_uuid when META_UUID is set.
    var metadataUUID: [UInt8]
    var rootInode: UInt64
    var agBlocks: UInt32
    var agCount: UInt32
    var version: Int
    var sectorSize: UInt16
    var inodeSize: UInt16
    var inodeLog: UInt8
    var inodesPerBlockLog: UInt8
    var agBlockLog: UInt8
    var dirBlockLog: UInt8
    var label: String
    var hasFtype: Bool
    var incompat: UInt32
    var roCompat: UInt32
    var logIncompat: UInt32
    var warnings: [String]

    var isV5: Bool { version == 5 }
    var dirBlockSize: Int { Int(blockSize) << Int(dirBlockLog) }
    /// The kernel's limit: block offsets in extent records are 54 bits (XFS_MAX_FILEOFF) and
    /// file offsets are signed 64-bit; di_size with bit 63 set fails xfs_dinode_verify.
    var maximumFileSize: UInt64 {
        let blocks: UInt64 = 1 << 54
        let (bytes, overflow) = blocks.multipliedReportingOverflow(by: UInt64(blockSize))
        return overflow ? UInt64(Int64.max) : min(bytes, UInt64(Int64.max))
    }
    var hasNrext64: Bool { incompat & Self.incompatNrext64 != 0 }

    static let magic: UInt32 = 0x5846_5342 // "XFSB"

    // v4 sb_versionnum bits.
    static let versionDirV2: UInt16 = 0x2000
    static let versionMoreBits: UInt16 = 0x8000
    static let versionNlink: UInt16 = 0x0020
    // sb_features2 bits.
    static let features2Crc: UInt32 = 0x0100
    static let features2Ftype: UInt32 = 0x0200

    // v5 incompat bits Wisp understands for reading.
    static let incompatFtype: UInt32 = 1 << 0
    static let incompatSparseInodes: UInt32 = 1 << 1
    static let incompatMetaUUID: UInt32 = 1 << 2
    static let incompatBigtime: UInt32 = 1 << 3
    static let incompatNeedsRepair: UInt32 = 1 << 4
    static let incompatNrext64: UInt32 = 1 << 5
    static let incompatExchangeRange: UInt32 = 1 << 6
    static let incompatParent: UInt32 = 1 << 7
    static let incompatNames: [(UInt32, String)] = [
        (1 << 0, "ftype"), (1 << 1, "sparse inodes"), (1 << 2, "meta_uuid"), (1 << 3, "bigtime"),
        (1 << 4, "needsrepair"), (1 << 5, "nrext64"), (1 << 6, "exchange-range"), (1 << 7, "parent pointers"),
        (1 << 8, "metadir"), (1 << 9, "zoned"),
    ]
    /// Features that change nothing a reader of files, directories and xattrs looks at in a
    /// way this reader does not handle (parent pointers are xattrs it skips).
    static let readableIncompat: UInt32 = incompatFtype | incompatSparseInodes | incompatMetaUUID
        | incompatBigtime | incompatNrext64 | incompatExchangeRange | incompatParent
    static let logIncompatNames: [(UInt32, String)] = [(1 << 0, "logged xattrs"), (1 << 1, "exchange-range")]

    static func parse(_ sector: [UInt8], source: String, deviceSize: UInt64) throws -> XFSSuperblock {
        let r = ByteReader(sector, source: source, structure: "XFS superblock")
        func bad(_ offset: Int, _ detail: String) -> WispError { r.error(at: offset, detail) }
        guard try r.u32be(0) == magic else { throw bad(0, "magic is not XFSB") }

        let versionNum = try r.u16be(100)
        let version = Int(versionNum & 0xF)
        guard version == 4 || version == 5 else {
            throw WispError.unsupported(source, "XFS superblock version \(version) (only 4 and 5 exist)")
        }
        let blockSize = try r.u32be(4)
        let blockLog = try r.u8(120)
        guard blockSize >= 512, blockSize <= 65536, blockSize.nonzeroBitCount == 1,
              UInt32(1) << UInt32(min(blockLog, 31)) == blockSize else {
            throw bad(4, "block size \(blockSize) (log \(blockLog)) is not a power of two in 512...65536")
        }
        let sectorSize = try r.u16be(102)
        let sectorLog = try r.u8(121)
        guard sectorSize >= 512, sectorSize <= 32768, sectorSize.nonzeroBitCount == 1,
              Int(1) << Int(min(sectorLog, 30)) == Int(sectorSize), UInt32(sectorSize) <= blockSize,
              Int(sectorSize) <= sector.count else {
            throw bad(102, "sector size \(sectorSize) (log \(sectorLog)) is not a power of two in 512...32768 and at most the block size")
        }
        let inodeSize = try r.u16be(104)
        let inodeLog = try r.u8(122)
        let inodesPerBlock = try r.u16be(106)
        let inodesPerBlockLog = try r.u8(123)
        guard inodeSize >= 256, inodeSize <= 2048, inodeSize.nonzeroBitCount == 1,
              Int(1) << Int(min(inodeLog, 30)) == Int(inodeSize), UInt32(inodeSize) <= blockSize,
              UInt32(inodesPerBlock) == blockSize / UInt32(inodeSize),
              Int(1) << Int(min(inodesPerBlockLog, 30)) == Int(inodesPerBlock) else {
            throw bad(104, "inode size \(inodeSize) (log \(inodeLog), \(inodesPerBlock) per block, log \(inodesPerBlockLog)) is inconsistent with the block size \(blockSize)")
        }
        if version == 5 && inodeSize < 512 {
            throw bad(104, "inode size \(inodeSize) is below the v5 minimum of 512")
        }
        let dataBlocks = try r.u64be(8)
        let agBlocks = try r.u32be(84)
        let agCount = try r.u32be(88)
        let agBlockLog = try r.u8(124)
        guard agBlocks >= 16, agCount >= 1, agBlockLog <= 31,
              UInt64(1) << UInt64(agBlockLog) >= UInt64(agBlocks),
              agBlockLog == 0 || UInt64(1) << UInt64(agBlockLog - 1) < UInt64(agBlocks) else {
            throw bad(84, "allocation group size \(agBlocks) blocks (log \(agBlockLog)) and count \(agCount) are invalid")
        }
        // AG numbers, AG block numbers and inode offsets are packed into 64-bit inode numbers.
        guard Int(agBlockLog) + Int(inodesPerBlockLog) <= 32 else {
            throw bad(124, "agblklog \(agBlockLog) + inopblog \(inodesPerBlockLog) do not fit an inode number")
        }
        let fullAGs = UInt64(agCount - 1) * UInt64(agBlocks)
        guard dataBlocks > fullAGs, dataBlocks <= UInt64(agCount) * UInt64(agBlocks) else {
            throw bad(8, "\(dataBlocks) data blocks do not match \(agCount) allocation groups of \(agBlocks) blocks")
        }
        let (bytes, overflow) = dataBlocks.multipliedReportingOverflow(by: UInt64(blockSize))
        guard !overflow, bytes <= deviceSize else {
            throw WispError.corrupt(source, "XFS superblock", at: 8,
                                    "the filesystem needs \(dataBlocks) blocks of \(blockSize) bytes but the device holds only \(deviceSize) bytes (truncated image?)")
        }
        let dirBlockLog = try r.u8(192)
        guard Int(blockSize) << Int(min(dirBlockLog, 8)) <= 65536, dirBlockLog <= 8 else {
            throw bad(192, "directory block log \(dirBlockLog) makes directory blocks larger than 64 KiB")
        }
        guard try r.u8(126) == 0 else {
            throw WispError.unsupported(source, "XFS superblock says mkfs.xfs never finished (sb_inprogress is set)")
        }
        guard versionNum & versionDirV2 != 0 else {
            throw WispError.unsupported(source, "XFS v4 filesystem with version 1 directories (from IRIX) is not supported")
        }
        let features2 = versionNum & versionMoreBits != 0 ? try r.u32be(200) : 0
        var warnings: [String] = []
        var incompat: UInt32 = 0, roCompat: UInt32 = 0, logIncompat: UInt32 = 0
        var hasFtype = features2 & features2Ftype != 0
        let uuid = try r.array(32, 16)
        var metadataUUID = uuid
        if version == 5 {
            // sb_crc covers the whole sector with the field itself zeroed, standard CRC-32C
            // stored little-endian.
            var copy = Array(sector[0..<Int(sectorSize)])
            let stored = try r.u32le(224)
            copy.putLE32(0, at: 224)
            guard CRC32C.checksum(copy) == stored else {
                throw bad(224, "superblock CRC mismatch (stored 0x\(String(stored, radix: 16)), computed 0x\(String(CRC32C.checksum(copy), radix: 16)))")
            }
            roCompat = try r.u32be(212)
            incompat = try r.u32be(216)
            logIncompat = try r.u32be(220)
            let unknown = incompat & ~readableIncompat
            if unknown != 0 {
                var names: [String] = []
                for (bit, name) in incompatNames where unknown & bit != 0 { names.append(name) }
                let rest = unknown & ~incompatNames.reduce(0) { $0 | $1.0 }
                if rest != 0 { names.append("unknown bits 0x\(String(rest, radix: 16))") }
                throw WispError.unsupported(source, "XFS incompatible features not supported: \(names.joined(separator: ", ")) (sb_features_incompat 0x\(String(incompat, radix: 16)))")
            }
            if logIncompat != 0 {
                var names: [String] = []
                for (bit, name) in logIncompatNames where logIncompat & bit != 0 { names.append(name) }
                let rest = logIncompat & ~logIncompatNames.reduce(0) { $0 | $1.0 }
                if rest != 0 { names.append("unknown bits 0x\(String(rest, radix: 16))") }
                warnings.append("\(source): the XFS log carries incompatible items (\(names.joined(separator: ", "))): it was not cleanly unmounted and may need log recovery; recent changes may be missing")
            }
            hasFtype = incompat & incompatFtype != 0
            if incompat & incompatMetaUUID != 0 { metadataUUID = try r.array(248, 16) }
        } else if features2 & features2Crc != 0 {
            throw bad(200, "a version 4 superblock claims CRC-enabled metadata")
        }
        let rootInode = try r.u64be(56)
        let labelBytes = try r.slice(108, 12)
        let labelEnd = labelBytes.firstIndex(of: 0) ?? labelBytes.endIndex
        let label = String(decoding: labelBytes[labelBytes.startIndex..<labelEnd], as: UTF8.self)
        let sb = XFSSuperblock(
            blockSize: blockSize, blockLog: blockLog, dataBlocks: dataBlocks, uuid: uuid, metadataUUID: metadataUUID,
            rootInode: rootInode, agBlocks: agBlocks, agCount: agCount, version: version, sectorSize: sectorSize,
            inodeSize: inodeSize, inodeLog: inodeLog, inodesPerBlockLog: inodesPerBlockLog, agBlockLog: agBlockLog,
            dirBlockLog: dirBlockLog, label: label, hasFtype: hasFtype, incompat: incompat, roCompat: roCompat,
            logIncompat: logIncompat, warnings: warnings)
        guard sb.inodeLocation(rootInode) != nil else {
            throw bad(56, "root inode \(rootInode) lies outside the filesystem")
        }
        return sb
    }

    /// Byte offset of an fs block (agno << agblklog | agbno), or nil if it names no block
    /// of this filesystem.
    func byteOffset(fsBlock: UInt64, count: UInt64 = 1) -> UInt64? {
        let agno = fsBlock >> UInt64(agBlockLog)
        let agbno = fsBlock & ((UInt64(1) << UInt64(agBlockLog)) - 1)
        guard agno < UInt64(agCount), count >= 1, agbno < UInt64(agBlocks),
              count <= UInt64(agBlocks) - agbno else { return nil }
        let linear = agno * UInt64(agBlocks) + agbno
        guard linear < dataBlocks, count <= dataBlocks - linear else { return nil }
        return linear << UInt64(blockLog)
    }

    /// Byte offset of an inode, or nil if the number names no inode slot of this filesystem.
    func inodeLocation(_ inode: UInt64) -> UInt64? {
        let shift = UInt64(agBlockLog) + UInt64(inodesPerBlockLog)
        let agno = inode >> shift
        let agino = inode & ((UInt64(1) << shift) - 1)
        let agbno = agino >> UInt64(inodesPerBlockLog)
        let slot = agino & ((UInt64(1) << UInt64(inodesPerBlockLog)) - 1)
        guard agno < UInt64(agCount), agbno < UInt64(agBlocks) else { return nil }
        let linear = agno * UInt64(agBlocks) + agbno
        guard linear < dataBlocks else { return nil }
        return (linear << UInt64(blockLog)) + slot * UInt64(inodeSize)
    }

    func agNumber(ofInode inode: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: inode >> (UInt64(agBlockLog) + UInt64(inodesPerBlockLog)))
    }

    var uuidString: String { Self.format(uuid: uuid) }

    static func format(uuid: [UInt8]) -> String {
        let hex = uuid.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
        guard hex.count == 16 else { return hex.joined() }
        return [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]].map { $0.joined() }.joined(separator: "-")
    }
}
