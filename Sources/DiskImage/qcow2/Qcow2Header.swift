import WispCore

/// Compression used for compressed clusters (header byte 104, incompatible bit 3).
public enum Qcow2CompressionType: String, Sendable, Codable, CaseIterable {
    case deflate, zstd

    var headerValue: UInt8 { self == .deflate ? 0 : 1 }
}

/// The qcow2 header (versions 2 and 3) with the extensions Wisp understands, decoded from
/// hostile bytes: every field is range-checked against the file before anything trusts it.
public struct Qcow2Header: Sendable, Equatable {
    public static let magic: UInt32 = 0x5146_49FB
    public static let minClusterBits: UInt32 = 9
    public static let maxClusterBits: UInt32 = 21
    /// Caps that keep a size field from driving an absurd allocation (QEMU uses the same
    /// order of magnitude: 32 MiB of L1, 8 MiB of refcount table).
    public static let maxL1Bytes: UInt64 = 32 << 20
    public static let maxRefcountTableBytes: UInt64 = 8 << 20
    /// 2^61 bytes; past that L2 offsets cannot be expressed (QEMU's QCOW_MAX_SIZE is smaller still).
    public static let maxVirtualSize: UInt64 = 1 << 61

    // Incompatible feature bits.
    public static let dirtyBit: UInt64 = 1 << 0
    public static let corruptBit: UInt64 = 1 << 1
    public static let externalDataBit: UInt64 = 1 << 2
    public static let compressionTypeBit: UInt64 = 1 << 3
    public static let extendedL2Bit: UInt64 = 1 << 4
    static let knownIncompatible: UInt64 = 0x1F
    // Compatible feature bits.
    public static let lazyRefcountsBit: UInt64 = 1 << 0
    // Autoclear feature bits.
    /// The external data file is a valid raw image by itself (guest offset = host offset).
    public static let dataFileRawBit: UInt64 = 1 << 1

    // Header extension types.
    static let extEnd: UInt32 = 0
    static let extBackingFormat: UInt32 = 0xE279_2ACA
    static let extFeatureNames: UInt32 = 0x6803_F857
    static let extBitmaps: UInt32 = 0x2385_2875
    static let extEncryption: UInt32 = 0x0537_BE77
    static let extDataFile: UInt32 = 0x4441_5441

    public var version: UInt32
    public var backingFileOffset: UInt64
    public var backingFileSize: UInt32
    public var clusterBits: UInt32
    public var size: UInt64
    public var cryptMethod: UInt32
    public var l1Size: UInt32
    public var l1TableOffset: UInt64
    public var refcountTableOffset: UInt64
    public var refcountTableClusters: UInt32
    public var snapshotCount: UInt32
    public var snapshotsOffset: UInt64
    public var incompatibleFeatures: UInt64 = 0
    public var compatibleFeatures: UInt64 = 0
    public var autoclearFeatures: UInt64 = 0
    public var refcountOrder: UInt32 = 4
    public var headerLength: UInt32 = 72
    public var compressionType: Qcow2CompressionType = .deflate

    // From extensions / the backing file name.
    public var backingFile: String?
    public var backingFormat: String?
    public var featureNames: [String] = []
    public var hasBitmaps = false
    /// The external data file's name from its header extension, exactly as recorded.
    /// QEMU only uses it when `hasExternalDataFile` is set.
    public var dataFile: String?

    public var clusterSize: Int { 1 << Int(clusterBits) }
    public var isDirty: Bool { incompatibleFeatures & Self.dirtyBit != 0 }
    public var isCorrupt: Bool { incompatibleFeatures & Self.corruptBit != 0 }
    public var hasExtendedL2: Bool { incompatibleFeatures & Self.extendedL2Bit != 0 }
    /// Guest data lives in another file (incompatible bit 2); the L2 entries point into it.
    public var hasExternalDataFile: Bool { incompatibleFeatures & Self.externalDataBit != 0 }
    public var dataFileIsRaw: Bool { autoclearFeatures & Self.dataFileRawBit != 0 }
    public var lazyRefcounts: Bool { compatibleFeatures & Self.lazyRefcountsBit != 0 }
    public var refcountBits: Int { 1 << Int(refcountOrder) }
    /// Bytes per L2 entry: 16 with extended L2 (descriptor + subcluster bitmap), else 8.
    public var l2EntrySize: Int { hasExtendedL2 ? 16 : 8 }
    public var l2Entries: Int { clusterSize / l2EntrySize }

    /// Number of L1 entries needed to map `size` bytes with this geometry.
    public static func l1EntriesNeeded(size: UInt64, clusterBits: UInt32, l2EntrySize: Int) -> UInt64 {
        let perL2 = UInt64(1 << Int(clusterBits)) / UInt64(l2EntrySize)
        let bytesPerL1 = perL2 << UInt64(clusterBits)
        return size / bytesPerL1 + (size % bytesPerL1 == 0 ? 0 : 1)
    }

    /// Parses and validates the header of `file` (`fileSize` bytes long).
    public static func parse(_ file: any BlockDevice, name: String) throws -> Qcow2Header {
        let fileSize = file.size
        guard fileSize >= 72 else {
            throw WispError.corrupt(name, "qcow2 header", at: 0, "file is \(fileSize) bytes, a header needs at least 72")
        }
        let head = try file.read(at: 0, count: Int(min(fileSize, 4096)))
        let r = ByteReader(head, source: name, structure: "qcow2 header")
        guard try r.u32be(0) == magic else { throw r.error(at: 0, "bad magic, not a qcow2 image") }
        let version = try r.u32be(4)
        guard version == 2 || version == 3 else {
            throw WispError.unsupported(name, "qcow2 version \(version) (Wisp reads versions 2 and 3)")
        }
        var h = Qcow2Header(
            version: version, backingFileOffset: try r.u64be(8), backingFileSize: try r.u32be(16),
            clusterBits: try r.u32be(20), size: try r.u64be(24), cryptMethod: try r.u32be(32),
            l1Size: try r.u32be(36), l1TableOffset: try r.u64be(40), refcountTableOffset: try r.u64be(48),
            refcountTableClusters: try r.u32be(56), snapshotCount: try r.u32be(60), snapshotsOffset: try r.u64be(64))
        guard h.clusterBits >= minClusterBits, h.clusterBits <= maxClusterBits else {
            throw r.error(at: 20, "cluster_bits \(h.clusterBits) is outside 9...21 (512 B to 2 MiB clusters)")
        }
        if version == 3 {
            h.incompatibleFeatures = try r.u64be(72)
            h.compatibleFeatures = try r.u64be(80)
            h.autoclearFeatures = try r.u64be(88)
            h.refcountOrder = try r.u32be(96)
            h.headerLength = try r.u32be(100)
            guard h.headerLength >= 104, h.headerLength <= 4096, h.headerLength <= h.clusterSize else {
                throw r.error(at: 100, "header_length \(h.headerLength) is outside 104...min(4096, cluster size)")
            }
            if h.headerLength > 104 {
                let type = try r.u8(104)
                switch type {
                case 0: h.compressionType = .deflate
                case 1: h.compressionType = .zstd
                default: throw r.error(at: 104, "unknown compression type \(type) (expected 0 deflate or 1 zstd)")
                }
                if type != 0 && h.incompatibleFeatures & compressionTypeBit == 0 {
                    throw r.error(at: 72, "compression type is set but the compression-type incompatible bit is not")
                }
            }
            guard h.refcountOrder <= 6 else {
                throw r.error(at: 96, "refcount_order \(h.refcountOrder) is larger than 6 (64-bit refcounts)")
            }
        }
        let unknown = h.incompatibleFeatures & ~knownIncompatible
        if unknown != 0 {
            throw WispError.unsupported(name, "qcow2 incompatible feature bits 0x\(String(unknown, radix: 16)) are unknown")
        }
        if h.hasExtendedL2 && h.clusterBits < 14 {
            throw r.error(at: 20, "extended L2 entries need clusters of at least 16 KiB, cluster_bits is \(h.clusterBits)")
        }
        guard h.cryptMethod == 0 else {
            throw WispError.unsupported(name, "encrypted qcow2 images (crypt_method \(h.cryptMethod)) are not supported")
        }
        guard h.size <= maxVirtualSize else {
            throw r.error(at: 24, "virtual size \(h.size) is absurd (more than 2^61 bytes)")
        }
        let cs = UInt64(h.clusterSize)
        func checkTable(_ what: String, field: Int, offset: UInt64, bytes: UInt64) throws {
            guard offset % cs == 0 else { throw r.error(at: field, "\(what) offset \(offset) is not cluster aligned") }
            let (end, overflow) = offset.addingReportingOverflow(bytes)
            guard !overflow, end <= fileSize else {
                throw r.error(at: field, "\(what) at \(offset) (\(bytes) bytes) reaches past end of file (\(fileSize) bytes)")
            }
        }
        let l1Bytes = UInt64(h.l1Size) * 8
        guard l1Bytes <= maxL1Bytes else {
            throw r.error(at: 36, "L1 table of \(h.l1Size) entries is absurd (more than \(maxL1Bytes >> 20) MiB)")
        }
        let needed = l1EntriesNeeded(size: h.size, clusterBits: h.clusterBits, l2EntrySize: h.l2EntrySize)
        guard UInt64(h.l1Size) >= needed else {
            throw r.error(at: 36, "L1 table has \(h.l1Size) entries but the virtual size \(h.size) needs \(needed)")
        }
        if h.l1Size > 0 { try checkTable("L1 table", field: 40, offset: h.l1TableOffset, bytes: l1Bytes) }
        let rtBytes = UInt64(h.refcountTableClusters) * cs
        guard rtBytes <= maxRefcountTableBytes else {
            throw r.error(at: 56, "refcount table of \(h.refcountTableClusters) clusters is absurd")
        }
        guard h.refcountTableClusters > 0 else { throw r.error(at: 56, "refcount table has no clusters") }
        try checkTable("refcount table", field: 48, offset: h.refcountTableOffset, bytes: rtBytes)

        // Backing file name.
        if h.backingFileOffset != 0 {
            guard h.backingFileSize > 0, h.backingFileSize <= 1023 else {
                throw r.error(at: 16, "backing file name length \(h.backingFileSize) is outside 1...1023")
            }
            let (end, overflow) = h.backingFileOffset.addingReportingOverflow(UInt64(h.backingFileSize))
            guard !overflow, end <= min(cs, fileSize) else {
                throw r.error(at: 8, "backing file name at \(h.backingFileOffset) lies outside the first cluster")
            }
            let nameBytes = try file.read(at: h.backingFileOffset, count: Int(h.backingFileSize))
            guard let s = String(validating: nameBytes, as: UTF8.self), !s.contains("\0") else {
                throw r.error(at: 8, "backing file name is not valid UTF-8")
            }
            h.backingFile = s
        }

        // Header extensions, up to the end of the first cluster.
        var position = Int(version == 2 ? 72 : h.headerLength)
        let limit = min(Int(min(cs, fileSize)), 4096 * 16)
        let extBytes = limit > head.count ? try file.read(at: 0, count: limit) : head
        let er = ByteReader(extBytes, source: name, structure: "qcow2 header extension")
        var seen = 0
        while position + 8 <= limit {
            seen += 1
            guard seen < 1024 else { throw er.error(at: position, "too many header extensions") }
            let type = try er.u32be(position)
            let length = Int(try er.u32be(position + 4))
            if type == extEnd { break }
            guard length <= limit - position - 8 else {
                throw er.error(at: position, "extension 0x\(String(type, radix: 16)) of \(length) bytes runs past the first cluster")
            }
            let body = position + 8
            switch type {
            case extBackingFormat:
                h.backingFormat = try er.cString(body, maxLength: length)
            case extFeatureNames:
                var i = 0
                while i + 48 <= length {
                    let kind = try er.u8(body + i)
                    let bit = try er.u8(body + i + 1)
                    let label = try er.cString(body + i + 2, maxLength: 46)
                    let kindName = ["incompatible", "compatible", "autoclear"][Int(min(kind, 2))]
                    h.featureNames.append("\(kindName) bit \(bit): \(label)")
                    i += 48
                }
            case extBitmaps:
                h.hasBitmaps = true
            case extEncryption:
                throw WispError.unsupported(name, "encrypted qcow2 images are not supported")
            case extDataFile:
                // Whether the image may name another file is `BackingChain.resolve`'s
                // decision; here the name only has to be one.
                let bytes = try er.slice(body, length)
                guard !bytes.isEmpty, !bytes.contains(0), let s = String(validating: bytes, as: UTF8.self) else {
                    throw er.error(at: body, "external data file name is empty, holds a NUL byte or is not UTF-8")
                }
                h.dataFile = s
            default:
                break  // Unknown extensions may be ignored (spec).
            }
            position = body + (length + 7) / 8 * 8
        }
        return h
    }

    /// Encodes a version 3 header (104 + 8 bytes with the compression type) followed by
    /// the backing format extension, the end marker and the backing file name.
    func encode(clusterSize: Int) throws -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 112)
        b.putBE32(Self.magic, at: 0)
        b.putBE32(version, at: 4)
        b.putBE64(0, at: 8)
        b.putBE32(0, at: 16)
        b.putBE32(clusterBits, at: 20)
        b.putBE64(size, at: 24)
        b.putBE32(cryptMethod, at: 32)
        b.putBE32(l1Size, at: 36)
        b.putBE64(l1TableOffset, at: 40)
        b.putBE64(refcountTableOffset, at: 48)
        b.putBE32(refcountTableClusters, at: 56)
        b.putBE32(snapshotCount, at: 60)
        b.putBE64(snapshotsOffset, at: 64)
        b.putBE64(incompatibleFeatures, at: 72)
        b.putBE64(compatibleFeatures, at: 80)
        b.putBE64(autoclearFeatures, at: 88)
        b.putBE32(refcountOrder, at: 96)
        b.putBE32(112, at: 100)
        b[104] = compressionType.headerValue
        if let backingFormat {
            let f = Array(backingFormat.utf8)
            var ext = [UInt8](repeating: 0, count: 8 + (f.count + 7) / 8 * 8)
            ext.putBE32(Self.extBackingFormat, at: 0)
            ext.putBE32(UInt32(f.count), at: 4)
            ext.replaceSubrange(8..<(8 + f.count), with: f)
            b += ext
        }
        b += [UInt8](repeating: 0, count: 8)  // end of extensions
        if let backingFile {
            let nameBytes = Array(backingFile.utf8)
            guard !nameBytes.isEmpty, nameBytes.count <= 1023 else {
                throw WispError.invalidArgument("backing file name must be 1 to 1023 bytes long")
            }
            b.putBE64(UInt64(b.count), at: 8)
            b.putBE32(UInt32(nameBytes.count), at: 16)
            b += nameBytes
        }
        guard b.count <= clusterSize else {
            throw WispError.invalidArgument("the qcow2 header with its backing file name does not fit in one \(clusterSize)-byte cluster")
        }
        return b
    }
}
