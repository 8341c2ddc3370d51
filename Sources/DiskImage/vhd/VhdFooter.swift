import WispCore

/// The 512-byte VHD footer (big-endian), as the Virtual Hard Disk Image Format
/// Specification lays it out; dynamic and differencing images keep a copy at offset 0.
public struct VhdFooter: Sendable, Equatable {
    public enum DiskType: UInt32, Sendable { case fixed = 2, dynamic = 3, differencing = 4 }

    public var dataOffset: UInt64
    public var creatorApp: [UInt8]
    public var originalSize: UInt64
    public var currentSize: UInt64
    public var cylinders: UInt16
    public var heads: UInt8
    public var sectorsPerTrack: UInt8
    public var diskType: DiskType
    public var uuid: [UInt8]
    public var timestamp: UInt32

    static let cookie = Array("conectix".utf8)
    /// 65535 × 16 × 255: the largest geometry, which tells qemu to trust current_size.
    static let maxGeometrySectors: UInt64 = 65535 * 16 * 255
    /// qemu refuses larger VHDs (2040 GiB).
    static let maxSectors: UInt64 = 0xFF00_0000

    /// Parses a footer, checking cookie and checksum.
    static func parse(_ bytes: [UInt8], name: String, at offset: UInt64) throws -> VhdFooter {
        let r = HeaderFields(bytes: bytes, name: name, structure: "VHD footer", base: offset)
        guard try r.slice(0, 8) == cookie else {
            throw WispError.corrupt(name, "VHD footer", at: offset, "no \"conectix\" cookie")
        }
        let stored = try r.be32(64)
        let computed = checksum(bytes)
        guard stored == computed else {
            throw WispError.corrupt(name, "VHD footer", at: offset, "checksum \(hex(stored)) does not match the footer (\(hex(computed)))")
        }
        let rawType = try r.be32(60)
        guard let type = DiskType(rawValue: rawType) else {
            throw WispError.unsupported(name, "VHD disk type \(rawType) at offset \(offset + 60) is not fixed (2), dynamic (3) or differencing (4)")
        }
        return VhdFooter(dataOffset: try r.be64(16), creatorApp: try r.slice(28, 4), originalSize: try r.be64(40),
                         currentSize: try r.be64(48), cylinders: try r.be16(56), heads: try r.u8(58),
                         sectorsPerTrack: try r.u8(59), diskType: type, uuid: try r.slice(68, 16),
                         timestamp: try r.be32(24))
    }

    /// The one's complement of the byte sum, the checksum field itself counted as zero.
    static func checksum(_ bytes: [UInt8], skipping field: Int = 64) -> UInt32 {
        var sum: UInt32 = 0
        for (i, b) in bytes.enumerated() where i < field || i >= field + 4 { sum &+= UInt32(b) }
        return ~sum
    }

    /// The virtual size exactly as qemu's vpc driver chooses it: the CHS geometry's size,
    /// except for creators known to use current_size (Hyper-V "win ", qemu's force_size
    /// "qem2", Disk2vhd "d2v ", XenConverter "CTXS", XenServer "tap\0") and for images
    /// whose geometry is the maximum (where CHS would truncate).
    public var virtualSize: UInt64 {
        let chsSectors = UInt64(cylinders) * UInt64(heads) * UInt64(sectorsPerTrack)
        let currentSizeCreators: [[UInt8]] = [Array("win ".utf8), Array("qem2".utf8), Array("d2v ".utf8),
                                               Array("CTXS".utf8), [0x74, 0x61, 0x70, 0]]
        let useCHS = !currentSizeCreators.contains(creatorApp)
        if !useCHS || chsSectors == Self.maxGeometrySectors {
            return currentSize / 512 * 512
        }
        return chsSectors * 512
    }

    /// The footer's 512 bytes, checksum filled in.
    func encoded() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 512)
        b.replaceSubrange(0..<8, with: Self.cookie)
        b.putBE(2, at: 8, width: 4)             // features: reserved bit always set
        b.putBE(0x0001_0000, at: 12, width: 4)  // version 1.0
        b.putBE(dataOffset, at: 16, width: 8)
        b.putBE(UInt64(timestamp), at: 24, width: 4)
        b.replaceSubrange(28..<32, with: creatorApp)
        b.putBE(0x0005_0003, at: 32, width: 4)  // creator version (Virtual PC 2007, as qemu)
        b.replaceSubrange(36..<40, with: Array("Wi2k".utf8))
        b.putBE(originalSize, at: 40, width: 8)
        b.putBE(currentSize, at: 48, width: 8)
        b.putBE(UInt64(cylinders), at: 56, width: 2)
        b[58] = heads
        b[59] = sectorsPerTrack
        b.putBE(UInt64(diskType.rawValue), at: 60, width: 4)
        b.replaceSubrange(68..<84, with: uuid)
        b.putBE(UInt64(Self.checksum(b)), at: 64, width: 4)
        return b
    }

    /// qemu's calculate_geometry: the CHS triple for `sectors` (capped at the maximum).
    static func geometry(forSectors sectors: UInt64) -> (cylinders: UInt16, heads: UInt8, sectors: UInt8) {
        let total = min(sectors, maxGeometrySectors)
        var spt: UInt64, heads: UInt64, cth: UInt64
        if total >= 65535 * 16 * 63 {
            spt = 255; heads = 16; cth = total / spt
        } else {
            spt = 17
            cth = total / spt
            heads = max(4, (cth + 1023) / 1024)
            if cth >= heads * 1024 || heads > 16 {
                spt = 31; heads = 16; cth = total / spt
            }
            if cth >= heads * 1024 {
                spt = 63; heads = 16; cth = total / spt
            }
        }
        return (UInt16(truncatingIfNeeded: cth / heads), UInt8(heads), UInt8(spt))
    }
}

func hex<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }
