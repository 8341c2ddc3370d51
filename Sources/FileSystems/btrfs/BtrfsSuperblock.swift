import WispCore

/// A btrfs key: (objectid, type, offset), ordered lexicographically as in every tree.
struct BtrfsKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    var objectID: UInt64
    var type: UInt8
    var offset: UInt64

    static let inodeItem: UInt8 = 1, inodeRef: UInt8 = 12, inodeExtref: UInt8 = 13, xattrItem: UInt8 = 24
    static let dirItem: UInt8 = 84, dirIndex: UInt8 = 96, extentData: UInt8 = 108
    static let rootItem: UInt8 = 132, rootBackref: UInt8 = 144, rootRef: UInt8 = 156, chunkItem: UInt8 = 228

    static func < (a: BtrfsKey, b: BtrfsKey) -> Bool {
        (a.objectID, a.type, a.offset) < (b.objectID, b.type, b.offset)
    }

    static func parse(_ r: ByteReader, at offset: Int) throws -> BtrfsKey {
        BtrfsKey(objectID: try r.u64le(offset), type: try r.u8(offset + 8), offset: try r.u64le(offset + 9))
    }

    var description: String { "(\(objectID) \(type) \(offset))" }
}

/// The btrfs superblock (primary at 64 KiB, mirrors at 64 MiB and 256 GiB): where the
/// root and chunk trees start, the node and sector sizes, and the bootstrap chunks that
/// map the chunk tree itself.
struct BtrfsSuperblock: Sendable {
    static let offsets: [UInt64] = [64 << 10, 64 << 20, 256 << 30]
    static let size = 4096
    static let magic: [UInt8] = Array("_BHRfS_M".utf8)

    static let incompatMixedBackref: UInt64 = 0x1, incompatDefaultSubvol: UInt64 = 0x2, incompatMixedGroups: UInt64 = 0x4
    static let incompatLZO: UInt64 = 0x8, incompatZstd: UInt64 = 0x10, incompatBigMetadata: UInt64 = 0x20
    static let incompatExtendedIref: UInt64 = 0x40, incompatRAID56: UInt64 = 0x80, incompatSkinnyMetadata: UInt64 = 0x100
    static let incompatNoHoles: UInt64 = 0x200, incompatMetadataUUID: UInt64 = 0x400, incompatRAID1C34: UInt64 = 0x800
    /// Features whose only effect on a reader of fs trees is understood here. Zoned,
    /// extent-tree-v2, the raid stripe tree and simple quotas are refused.
    static let knownIncompat: UInt64 = 0xFFF

    let offset: UInt64
    let fsid: [UInt8]
    /// The UUID tree blocks carry: fsid, or metadata_uuid when that feature is on.
    let metadataUUID: [UInt8]
    let generation: UInt64
    let rootTree: UInt64
    let chunkTree: UInt64
    let totalBytes: UInt64
    let numDevices: UInt64
    let sectorSize: UInt32
    let nodeSize: UInt32
    let chunkRootGeneration: UInt64
    let incompat: UInt64
    let csumType: UInt16
    let rootLevel: UInt8
    let chunkRootLevel: UInt8
    let deviceID: UInt64
    let label: String
    /// (key, chunk item bytes) pairs of the SYSTEM chunks stored in the superblock.
    let systemChunks: [(BtrfsKey, ByteReader)]

    var uuidString: String { XFSSuperblock.format(uuid: fsid) }

    /// Parses and validates one superblock copy read from `offset`.
    static func parse(_ bytes: [UInt8], at offset: UInt64, source: String) throws -> BtrfsSuperblock {
        let r = ByteReader(bytes, source: source, structure: "btrfs superblock", baseOffset: offset)
        guard bytes.count >= size else { throw r.error(at: 0, "only \(bytes.count) bytes, expected \(size)") }
        guard try r.array(0x40, 8) == magic else { throw r.error(at: 0x40, "magic is not _BHRfS_M") }
        let csumType = try r.u16le(0xC4)
        guard csumType == 0 else {
            let name = [1: "xxhash64", 2: "sha256", 3: "blake2b"][Int(csumType)] ?? "type \(csumType)"
            throw WispError.unsupported(source, "btrfs checksum algorithm \(name) is not supported (only crc32c)")
        }
        let stored = try r.u32le(0)
        let computed = CRC32C.checksum(bytes[32..<size])
        guard stored == computed else {
            throw r.error(at: 0, "crc32c mismatch (stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16)))")
        }
        guard try r.u64le(0x30) == offset else {
            throw r.error(at: 0x30, "records its own position as \(try r.u64le(0x30)), expected \(offset)")
        }
        let sectorSize = try r.u32le(0x90), nodeSize = try r.u32le(0x94)
        guard sectorSize >= 4096, sectorSize <= 65536, sectorSize.nonzeroBitCount == 1 else {
            throw r.error(at: 0x90, "sector size \(sectorSize) is not a power of two in 4096...65536")
        }
        guard nodeSize >= sectorSize, nodeSize <= 65536, nodeSize.nonzeroBitCount == 1 else {
            throw r.error(at: 0x94, "node size \(nodeSize) is not a power of two in \(sectorSize)...65536")
        }
        let incompat = try r.u64le(0xBC)
        let unknown = incompat & ~knownIncompat
        guard unknown == 0 else {
            throw WispError.unsupported(source, "btrfs incompatible features 0x\(String(unknown, radix: 16)) are not supported")
        }
        let fsid = try r.array(0x20, 16)
        let metadataUUID = incompat & incompatMetadataUUID != 0 ? try r.array(0x23B, 16) : fsid
        let rootLevel = try r.u8(0xC6), chunkRootLevel = try r.u8(0xC7)
        guard rootLevel < 8, chunkRootLevel < 8 else { throw r.error(at: 0xC6, "tree level above 7") }
        let labelBytes = try r.array(0x12B, 256)
        let label = String(decoding: labelBytes.prefix(while: { $0 != 0 }), as: UTF8.self)
        let arraySize = Int(try r.u32le(0xA0))
        guard arraySize <= 2048 else { throw r.error(at: 0xA0, "sys_chunk_array size \(arraySize) exceeds 2048") }
        var chunks: [(BtrfsKey, ByteReader)] = []
        var at = 0x32B
        let end = at + arraySize
        while at < end {
            let key = try BtrfsKey.parse(r, at: at)
            guard key.type == BtrfsKey.chunkItem else {
                throw r.error(at: at, "sys_chunk_array entry has key type \(key.type), expected CHUNK_ITEM (228)")
            }
            at += 17
            guard at + 48 <= end else { throw r.error(at: at, "chunk item runs past the sys_chunk_array") }
            let stripes = Int(try r.u16le(at + 44))
            let length = 48 + 32 * stripes
            guard stripes >= 1, at + length <= end else {
                throw r.error(at: at, "chunk item with \(stripes) stripes runs past the sys_chunk_array")
            }
            chunks.append((key, try r.sub(at, length, structure: "btrfs sys_chunk_array chunk at logical \(key.offset)")))
            at += length
        }
        return BtrfsSuperblock(offset: offset, fsid: fsid, metadataUUID: metadataUUID, generation: try r.u64le(0x48),
                               rootTree: try r.u64le(0x50), chunkTree: try r.u64le(0x58), totalBytes: try r.u64le(0x70),
                               numDevices: try r.u64le(0x88), sectorSize: sectorSize, nodeSize: nodeSize,
                               chunkRootGeneration: try r.u64le(0xA4), incompat: incompat, csumType: csumType,
                               rootLevel: rootLevel, chunkRootLevel: chunkRootLevel, deviceID: try r.u64le(0xC9),
                               label: label, systemChunks: chunks)
    }

    /// Uses the primary superblock when it is valid; otherwise the valid mirror with the
    /// highest generation. The primary's error is reported when no copy is valid.
    static func best(on device: any BlockDevice) throws -> BtrfsSuperblock {
        var best: BtrfsSuperblock?
        var firstError: Error?
        for offset in offsets where offset + UInt64(size) <= device.size {
            do {
                let sb = try parse(try device.read(at: offset, count: size), at: offset, source: device.name)
                // A valid primary is authoritative, as in the kernel; mirrors stand in for a bad one.
                if offset == offsets[0] { return sb }
                if best == nil || sb.generation > best?.generation ?? 0 { best = sb }
            } catch let error as WispError where error.kind == .unsupported && offset == offsets[0] {
                throw error
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        if let best { return best }
        throw firstError ?? WispError.corrupt(device.name, "btrfs superblock", at: offsets[0], "the device is too small to hold one")
    }
}
