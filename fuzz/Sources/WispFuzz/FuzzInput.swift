import WispCore

/// How fuzz inputs become what parsers read.
enum FuzzInput {
    /// Inputs that start with this are sparse devices (see `device`); others are dense.
    static let sparseMagic = Array("WISPDISK".utf8)
    /// Sparse devices claim at most this much: room for real layouts (btrfs wants 114 MB,
    /// XFS 16 MB), small enough that a reader which sizes an allocation from the device
    /// size shows up as an out-of-memory finding rather than passing by luck.
    static let maxSparseSize: UInt64 = 4 << 30
    /// Separates the images of a backing chain or the files of a multi-file input.
    static let fileSeparator = Array("\n--WISP-FUZZ-NEXT-FILE--\n".utf8)

    /// The input as a block device. Dense: the bytes themselves. Sparse (mkfs images of
    /// 16–114 MB whose metadata fills a few hundred sectors):
    /// `"WISPDISK" size:u64le { offset:u64le length:u32le bytes[length] }*`, zeros elsewhere;
    /// a truncated last extent keeps the bytes present.
    static func device(_ input: [UInt8], name: String) -> MemoryBlockDevice {
        guard input.starts(with: sparseMagic), input.count >= 16 else {
            return MemoryBlockDevice(name: name, bytes: input)
        }
        let size = min(le64(input, 8), maxSparseSize)
        var extents: [MemoryBlockDevice.Extent] = []
        var at = 16
        while at + 12 <= input.count, extents.count < 4096 {
            let offset = le64(input, at)
            let length = Int(le32(input, at + 8))
            at += 12
            let end = min(input.count, at + min(length, input.count - at))
            extents.append(.init(offset: offset, bytes: Array(input[at..<end])))
            at = end
        }
        return MemoryBlockDevice(name: name, size: size, extents: extents)
    }

    /// The input as text, the way Wisp's readers decode guest files (invalid UTF-8 repaired).
    static func text(_ input: [UInt8]) -> String { String(decoding: input, as: UTF8.self) }

    /// The input cut at each `fileSeparator`: at most `limit` parts, the last holding the rest.
    static func files(_ input: [UInt8], limit: Int) -> [[UInt8]] {
        var parts: [[UInt8]] = []
        var start = 0
        var i = 0
        let separator = fileSeparator
        while parts.count < limit - 1, i + separator.count <= input.count {
            if input[i] == separator[0], Array(input[i..<(i + separator.count)]) == separator {
                parts.append(Array(input[start..<i]))
                i += separator.count
                start = i
            } else {
                i += 1
            }
        }
        parts.append(Array(input[start...]))
        return parts
    }

    static func le64(_ b: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) }
    }

    static func le32(_ b: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) }
    }
}
