import WispCore

/// The checksum arithmetic ext4 uses. The kernel's `ext4_chksum` is the bare CRC-32C
/// register update with no final inversion, chained from a per-filesystem seed (and, for
/// per-inode structures, a per-inode seed); `CRC32C.raw` is exactly that. Group
/// descriptors on gdt_csum filesystems use the kernel's crc16 (CRC-16/ARC polynomial,
/// reflected, initial value ~0, no final inversion).
enum Ext4Checksums {
    /// `ext4_chksum(seed, bytes)`.
    @inline(__always)
    static func crc32c<C: Collection>(_ seed: UInt32, _ bytes: C) -> UInt32 where C.Element == UInt8 {
        CRC32C.raw(bytes, seed: seed)
    }

    static func crc32c(_ seed: UInt32, le32 value: UInt32) -> UInt32 {
        crc32c(seed, littleEndian32(value))
    }

    static func crc32c(_ seed: UInt32, le64 value: UInt64) -> UInt32 {
        var bytes = [UInt8](repeating: 0, count: 8)
        bytes.putLE64(value, at: 0)
        return crc32c(seed, bytes)
    }

    static func littleEndian32(_ value: UInt32) -> [UInt8] {
        [UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value >> 8),
         UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 24)]
    }

    /// The per-inode seed that inode, extent-block and directory-block checksums start
    /// from: the filesystem seed folded with the inode number and its generation.
    static func inodeSeed(filesystemSeed: UInt32, inode: UInt32, generation: UInt32) -> UInt32 {
        crc32c(crc32c(filesystemSeed, le32: inode), le32: generation)
    }

    private static let crc16Table: [UInt16] = (0..<256).map { i in
        var c = UInt16(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xA001 : c >> 1 }
        return c
    }

    /// The kernel's `crc16(crc, buffer)`.
    static func crc16<C: Collection>(_ seed: UInt16, _ bytes: C) -> UInt16 where C.Element == UInt8 {
        var crc = seed
        for byte in bytes {
            crc = (crc >> 8) ^ crc16Table[Int((crc ^ UInt16(byte)) & 0xFF)]
        }
        return crc
    }

    static func hex(_ value: UInt32) -> String {
        "0x" + String(value, radix: 16)
    }
}
