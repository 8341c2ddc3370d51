/// Table-driven CRC-32 (IEEE 802.3, as in zlib/GPT/gzip) and CRC-32C (Castagnoli, as in
/// ext4 metadata_csum, btrfs and XFS), slicing by 8 for throughput on large buffers.
public struct CRC32Table: Sendable {
    let tables: [[UInt32]]

    init(polynomial: UInt32) {
        var t0 = [UInt32](repeating: 0, count: 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ polynomial : c >> 1 }
            t0[i] = c
        }
        var all = [t0]
        for k in 1..<8 {
            var t = [UInt32](repeating: 0, count: 256)
            for i in 0..<256 {
                let prev = all[k - 1][i]
                t[i] = (prev >> 8) ^ t0[Int(prev & 0xff)]
            }
            all.append(t)
        }
        tables = all
    }

    /// Continues a raw (non-inverted) CRC register over `buffer`.
    func update(_ crc: UInt32, _ buffer: UnsafeRawBufferPointer) -> UInt32 {
        var c = crc
        var i = 0
        let n = buffer.count
        tables.withUnsafeBufferPointer { tp in
            let t0 = tp[0], t1 = tp[1], t2 = tp[2], t3 = tp[3]
            let t4 = tp[4], t5 = tp[5], t6 = tp[6], t7 = tp[7]
            while i + 8 <= n {
                let lo = c ^ (UInt32(buffer[i]) | UInt32(buffer[i + 1]) << 8
                    | UInt32(buffer[i + 2]) << 16 | UInt32(buffer[i + 3]) << 24)
                let hi = UInt32(buffer[i + 4]) | UInt32(buffer[i + 5]) << 8
                    | UInt32(buffer[i + 6]) << 16 | UInt32(buffer[i + 7]) << 24
                c = t7[Int(lo & 0xff)] ^ t6[Int((lo >> 8) & 0xff)] ^ t5[Int((lo >> 16) & 0xff)]
                    ^ t4[Int(lo >> 24)] ^ t3[Int(hi & 0xff)] ^ t2[Int((hi >> 8) & 0xff)]
                    ^ t1[Int((hi >> 16) & 0xff)] ^ t0[Int(hi >> 24)]
                i += 8
            }
            while i < n {
                c = (c >> 8) ^ t0[Int((c ^ UInt32(buffer[i])) & 0xff)]
                i += 1
            }
        }
        return c
    }
}

public enum CRC32 {
    static let table = CRC32Table(polynomial: 0xEDB8_8320)

    /// The standard CRC-32 of `bytes` (what zlib's crc32() returns), optionally continuing
    /// from a previous result.
    public static func checksum<C: Collection>(_ bytes: C, continuing previous: UInt32 = 0) -> UInt32
    where C.Element == UInt8 {
        let raw = bytes.withContiguousStorageIfAvailable { table.update(~previous, UnsafeRawBufferPointer($0)) }
            ?? Array(bytes).withUnsafeBytes { table.update(~previous, $0) }
        return ~raw
    }
}

public enum CRC32C {
    static let table = CRC32Table(polynomial: 0x82F6_3B78)

    /// The standard CRC-32C of `bytes` (seed ~0, final inversion), optionally continuing
    /// from a previous result.
    public static func checksum<C: Collection>(_ bytes: C, continuing previous: UInt32 = 0) -> UInt32
    where C.Element == UInt8 {
        ~raw(bytes, seed: ~previous)
    }

    /// The bare register update with no inversions, as ext4 (`ext4_chksum`) and btrfs use
    /// it: callers pass their own seed and apply their own final step.
    public static func raw<C: Collection>(_ bytes: C, seed: UInt32) -> UInt32 where C.Element == UInt8 {
        bytes.withContiguousStorageIfAvailable { table.update(seed, UnsafeRawBufferPointer($0)) }
            ?? Array(bytes).withUnsafeBytes { table.update(seed, $0) }
    }
}
