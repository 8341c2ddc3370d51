import WispCore

/// How an inode fork stores its contents (di_format / di_aformat).
enum XFSForkFormat: UInt8, Sendable {
    case device = 0, local = 1, extents = 2, btree = 3
}

enum XFSForkKind: Sendable {
    case data, attr
}

/// A decoded on-disk inode (xfs_dinode): the core fields Wisp reports plus both forks'
/// raw literal-area bytes, verified (magic, CRC, self-number, UUID) before use.
struct XFSInode: Sendable {
    var number: UInt64
    var mode: UInt16
    var version: UInt8
    var format: XFSForkFormat
    var attrFormat: XFSForkFormat?
    var uid: UInt32
    var gid: UInt32
    var linkCount: UInt32
    var size: UInt64
    var accessTime: Timestamp
    var modificationTime: Timestamp
    var changeTime: Timestamp
    var flags: UInt16
    var dataExtentCount: UInt64
    var attrExtentCount: UInt64
    var dataFork: [UInt8]
    var attrFork: [UInt8]
    /// Absolute device offsets of the forks, for error messages.
    var dataForkOffset: UInt64
    var attrForkOffset: UInt64

    var type: FileType { FileType(mode: UInt32(mode)) }

    static let magic: UInt16 = 0x494E // "IN"
    static let flagRealtime: UInt16 = 0x0001
    static let flags2Bigtime: UInt64 = 1 << 3
    static let flags2Nrext64: UInt64 = 1 << 4

    static func parse(_ bytes: [UInt8], number: UInt64, at offset: UInt64, superblock sb: XFSSuperblock,
                      source: String) throws -> XFSInode {
        let r = ByteReader(bytes, source: source, structure: "XFS inode \(number)", baseOffset: offset)
        guard try r.u16be(0) == magic else { throw r.error(at: 0, "magic is not IN (a free or overwritten inode slot)") }
        let version = try r.u8(4)
        let coreSize: Int
        if sb.isV5 {
            guard version == 3 else { throw r.error(at: 4, "inode version \(version) on a v5 filesystem (expected 3)") }
            coreSize = 176
            let stored = try r.u32le(100)
            var copy = bytes
            copy.putLE32(0, at: 100)
            let computed = CRC32C.checksum(copy)
            guard computed == stored else {
                throw r.error(at: 100, "inode CRC mismatch (stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16)))")
            }
            let selfNumber = try r.u64be(152)
            guard selfNumber == number else { throw r.error(at: 152, "inode records its number as \(selfNumber)") }
            guard try r.array(160, 16) == sb.metadataUUID else {
                throw r.error(at: 160, "inode belongs to another filesystem (UUID mismatch)")
            }
        } else {
            guard version == 1 || version == 2 else {
                throw r.error(at: 4, "inode version \(version) on a v4 filesystem (expected 1 or 2)")
            }
            coreSize = 100
        }
        let mode = try r.u16be(2)
        let rawFormat = try r.u8(5)
        guard let format = XFSForkFormat(rawValue: rawFormat) else {
            throw r.error(at: 5, "unknown data fork format \(rawFormat)")
        }
        let flags2: UInt64 = version == 3 ? try r.u64be(120) : 0
        let nrext64 = flags2 & flags2Nrext64 != 0
        if nrext64 && !sb.hasNrext64 {
            throw r.error(at: 120, "inode uses large extent counters but the superblock lacks nrext64")
        }
        let dataExtents: UInt64 = nrext64 ? try r.u64be(24) : UInt64(try r.u32be(76))
        let attrExtents: UInt64 = nrext64 ? UInt64(try r.u32be(76)) : UInt64(try r.u16be(80))
        let forkOffset = Int(try r.u8(82)) * 8
        let literal = Int(sb.inodeSize) - coreSize
        guard forkOffset < literal else {
            throw r.error(at: 82, "attribute fork offset \(forkOffset) lies beyond the \(literal)-byte literal area")
        }
        let rawAttrFormat = try r.u8(83)
        var attrFormat: XFSForkFormat?
        if forkOffset > 0 {
            guard let f = XFSForkFormat(rawValue: rawAttrFormat), f != .device else {
                throw r.error(at: 83, "unknown attribute fork format \(rawAttrFormat)")
            }
            attrFormat = f
        }
        let dataSize = forkOffset > 0 ? forkOffset : literal
        let bigtime = flags2 & flags2Bigtime != 0
        func time(_ at: Int) throws -> Timestamp {
            if bigtime {
                // Nanoseconds since 1901-12-13 20:45:52 UTC (the most negative 32-bit time).
                let raw = try r.u64be(at)
                let seconds = Int64(raw / 1_000_000_000) - (Int64(1) << 31)
                return Timestamp(seconds: seconds, nanoseconds: UInt32(raw % 1_000_000_000))
            }
            let seconds = Int64(Int32(bitPattern: try r.u32be(at)))
            let nanos = try r.u32be(at + 4)
            return Timestamp(seconds: seconds, nanoseconds: min(nanos, 999_999_999))
        }
        let linkCount: UInt32 = version == 1 ? UInt32(try r.u16be(6)) : try r.u32be(16)
        return XFSInode(
            number: number, mode: mode, version: version, format: format, attrFormat: attrFormat,
            uid: try r.u32be(8), gid: try r.u32be(12), linkCount: linkCount, size: try r.u64be(56),
            accessTime: try time(32), modificationTime: try time(40), changeTime: try time(48),
            flags: try r.u16be(90), dataExtentCount: dataExtents, attrExtentCount: attrExtents,
            dataFork: try r.array(coreSize, dataSize),
            attrFork: forkOffset > 0 ? try r.array(coreSize + forkOffset, literal - forkOffset) : [],
            dataForkOffset: offset + UInt64(coreSize),
            attrForkOffset: offset + UInt64(coreSize + forkOffset))
    }

    func fork(_ kind: XFSForkKind) -> (format: XFSForkFormat?, bytes: [UInt8], offset: UInt64, extents: UInt64) {
        switch kind {
        case .data: return (format, dataFork, dataForkOffset, dataExtentCount)
        case .attr: return (attrFormat, attrFork, attrForkOffset, attrExtentCount)
        }
    }

    func stat() -> FileStat {
        var major: UInt32 = 0, minor: UInt32 = 0
        if (type == .characterDevice || type == .blockDevice), format == .device, dataFork.count >= 4 {
            // xfs_dev_t: 14-bit major, 18-bit minor (sysv encoding).
            let dev = UInt32(dataFork[0]) << 24 | UInt32(dataFork[1]) << 16 | UInt32(dataFork[2]) << 8 | UInt32(dataFork[3])
            major = dev >> 18
            minor = dev & 0x3FFFF
        }
        return FileStat(inode: number, type: type, permissions: UInt32(mode) & 0o7777, uid: uid, gid: gid,
                        size: size, linkCount: linkCount, accessTime: accessTime,
                        modificationTime: modificationTime, changeTime: changeTime,
                        deviceMajor: major, deviceMinor: minor)
    }
}
