import WispCompression
import WispCore

extension BtrfsReader {
    /// The kernel never compresses more than this into one extent (BTRFS_MAX_COMPRESSED);
    /// larger sizes in a compressed extent are corruption.
    static let maxCompressedExtent: UInt64 = 128 << 10
    static let maxExtentSpan: UInt64 = 128 << 20

    /// Reads file bytes `[offset, offset+count)` from the EXTENT_DATA items; everything no
    /// extent covers (holes, NO_HOLES gaps, prealloc) stays zero.
    func readData(inode: UInt64, size: UInt64, offset: UInt64, count: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: count)
        let end = offset + UInt64(count)
        let what = "btrfs extent data of inode \(inode)"
        // No extent spans more than 128 MiB (BTRFS_MAX_EXTENT_SIZE), so items starting
        // earlier than that cannot reach the request; ranged reads skip them.
        let first = offset > Self.maxExtentSpan ? offset - Self.maxExtentSpan : 0
        for (key, item) in try items(of: inode, type: BtrfsKey.extentData, from: first, through: end - 1) {
            guard item.count >= 21 else { throw item.error(at: 0, "file extent item of \(item.count) bytes") }
            let start = key.offset
            let ramBytes = try item.u64le(8)
            let compression = try item.u8(16), kind = try item.u8(20)
            guard try item.u8(17) == 0, try item.u16le(18) == 0 else {
                throw WispError.unsupported(source, "\(what) at file offset \(start) is encrypted or otherwise encoded")
            }
            switch kind {
            case 0:
                // Inline: the bytes follow the header, compressed or not.
                let stored = try item.array(21, item.count - 21)
                guard ramBytes <= UInt64(sb.sectorSize) else {
                    throw item.error(at: 8, "inline extent of \(ramBytes) bytes exceeds the \(sb.sectorSize)-byte sector")
                }
                let plain = compression == 0 ? stored
                    : try decompress(stored, algorithm: compression, size: Int(ramBytes), what: what)
                copy(plain[...], fileStart: start, into: &output, requestOffset: offset)
            case 1, 2:
                guard item.count >= 53 else { throw item.error(at: 0, "regular file extent item of \(item.count) bytes") }
                let diskBytenr = try item.u64le(21), diskBytes = try item.u64le(29)
                let extentOffset = try item.u64le(37), numBytes = try item.u64le(45)
                let (extentEnd, overflow) = start.addingReportingOverflow(numBytes)
                guard !overflow, numBytes <= Self.maxExtentSpan else {
                    throw item.error(at: 45, "extent length \(numBytes) exceeds \(Self.maxExtentSpan) bytes")
                }
                let from = max(start, offset), to = min(extentEnd, end)
                // Prealloc extents and explicit holes (disk_bytenr 0) read as zeros.
                guard from < to, kind == 1, diskBytenr != 0 else { continue }
                if compression == 0 {
                    let (sum, o1) = diskBytenr.addingReportingOverflow(extentOffset)
                    let (logical, o2) = sum.addingReportingOverflow(from - start)
                    guard !o1, !o2 else { throw item.error(at: 21, "extent address overflows") }
                    try output.withUnsafeMutableBytes { buffer in
                        try trees.readLogical(into: UnsafeMutableRawBufferPointer(rebasing: buffer[Int(from - offset)..<Int(to - offset)]),
                                              at: logical, what: what)
                    }
                } else {
                    guard diskBytes <= Self.maxCompressedExtent, ramBytes <= Self.maxCompressedExtent else {
                        throw item.error(at: 8, "compressed extent of \(diskBytes) → \(ramBytes) bytes exceeds \(Self.maxCompressedExtent)")
                    }
                    let plain: [UInt8]
                    if let cached = extentCache[diskBytenr], cached.count == Int(ramBytes) {
                        plain = cached
                    } else {
                        let raw = try trees.readLogical(diskBytenr, count: Int(diskBytes), what: what)
                        plain = try decompress(raw, algorithm: compression, size: Int(ramBytes), what: what)
                        extentCache.insert(plain, for: diskBytenr)
                    }
                    guard extentOffset <= UInt64(plain.count) else {
                        throw item.error(at: 37, "offset \(extentOffset) lies past the \(plain.count)-byte decompressed extent")
                    }
                    let usable = plain[Int(extentOffset)...].prefix(Int(min(numBytes, UInt64(plain.count) - extentOffset)))
                    copy(usable, fileStart: start, into: &output, requestOffset: offset)
                }
            default:
                throw item.error(at: 20, "file extent type \(kind) (expected inline 0, regular 1 or prealloc 2)")
            }
        }
        return output
    }

    /// Copies the part of `bytes` (file bytes from `fileStart`) that falls in the request.
    private func copy(_ bytes: ArraySlice<UInt8>, fileStart: UInt64, into output: inout [UInt8], requestOffset: UInt64) {
        let requestEnd = requestOffset + UInt64(output.count)
        let (dataEnd, overflow) = fileStart.addingReportingOverflow(UInt64(bytes.count))
        let from = max(fileStart, requestOffset), to = min(overflow ? .max : dataEnd, requestEnd)
        guard from < to else { return }
        let source = bytes.startIndex + Int(from - fileStart)
        output.replaceSubrange(Int(from - requestOffset)..<Int(to - requestOffset),
                               with: bytes[source..<(source + Int(to - from))])
    }

    /// Decompresses one extent to at most `size` bytes; a short result is zero-filled, as
    /// the kernel does.
    func decompress(_ data: [UInt8], algorithm: UInt8, size: Int, what: String) throws -> [UInt8] {
        try Self.decompress(data, algorithm: algorithm, size: size, sectorSize: Int(sb.sectorSize), source: source, what: what)
    }

    /// The extent decompressors, by btrfs compression type (1 zlib, 2 lzo, 3 zstd).
    static func decompress(_ data: [UInt8], algorithm: UInt8, size: Int, sectorSize: Int, source: String,
                           what: String) throws -> [UInt8] {
        var plain: [UInt8]
        switch algorithm {
        case 1: plain = try Deflate.inflate(data, framing: .zlib, limit: size, context: "\(source): \(what)")
        case 2: plain = try lzoSectors(data, size: size, sectorSize: sectorSize, source: source, what: what)
        case 3: plain = try Zstd.decompress(data, limit: size, context: "\(source): \(what)")
        default: throw WispError.unsupported(source, "\(what) uses compression type \(algorithm)")
        }
        if plain.count < size { plain += [UInt8](repeating: 0, count: size - plain.count) }
        return plain
    }

    /// btrfs LZO framing: a 4-byte total length, then segments of (4-byte length, LZO1X
    /// data), each decompressing to at most one sector; a segment header never straddles
    /// a sector boundary (the writer pads to the next sector instead).
    static func lzoSectors(_ data: [UInt8], size: Int, sectorSize sector: Int, source: String, what: String) throws -> [UInt8] {
        let r = ByteReader(data, source: source, structure: "\(what) (LZO)")
        let total = Int(try r.u32le(0))
        guard total >= 4, total <= data.count else { throw r.error(at: 0, "total length \(total) outside 4...\(data.count)") }
        var output: [UInt8] = []
        var at = 4
        while at < total, output.count < size {
            if sector - at % sector < 4 { at += sector - at % sector }
            guard at + 4 <= total else { break }
            let length = Int(try r.u32le(at))
            at += 4
            guard length >= 1, length <= total - at, length <= sector * 2 else {
                throw r.error(at: at - 4, "segment of \(length) bytes runs past the \(total)-byte extent")
            }
            let segment = try LZO.decompress(Array(data[at..<(at + length)]), limit: min(sector, size - output.count),
                                             context: "\(source): \(what)")
            output += segment
            at += length
        }
        return output
    }
}
