import WispCore

/// Lays out VHDX images as qemu-img does: file identifier, two headers (sequence 0 and
/// 1, empty log), two identical region tables, the log at 1 MiB, the metadata region
/// (1 MiB) after it, then the BAT and 1 MiB-aligned payload blocks. Every block of a fixed
/// image is FULLY_PRESENT; a dynamic image stores only blocks holding data.
enum VhdxWriter {
    static let mib: UInt64 = 1 << 20

    /// qemu-img's choice when no block_size is given (block/vhdx.c): 8 MiB up to 1 GiB,
    /// 16 MiB up to 100 GiB, 32 MiB up to 32 TiB, 64 MiB above. Smaller blocks keep a
    /// sparse image's allocated blocks (and the writer's buffers) close to its data.
    static func defaultBlockSize(virtualSize: UInt64) -> UInt64 {
        let gib: UInt64 = 1 << 30
        if virtualSize > 32 << 40 { return 64 * mib }
        if virtualSize > 100 * gib { return 32 * mib }
        if virtualSize > gib { return 16 * mib }
        return 8 * mib
    }

    static func plan(size requested: UInt64, options: BlockMappedWriteOptions) throws -> BlockMappedWriter.Plan {
        let size = (requested + 511) / 512 * 512
        guard size > 0, size <= VhdxImage.maxVirtualSize else {
            throw WispError.invalidArgument("a VHDX image holds 512 bytes to 64 TiB; \(requested) bytes is not possible")
        }
        let blockSize = options.blockSize ?? Self.defaultBlockSize(virtualSize: size)
        guard blockSize >= mib, blockSize <= 256 * mib, blockSize & (blockSize - 1) == 0 else {
            throw WispError.invalidArgument("VHDX block_size must be a power of two from 1 MiB to 256 MiB (got \(blockSize))")
        }
        let logSize = options.logSize ?? mib
        guard logSize >= mib, logSize % mib == 0, logSize <= (1 << 32) - mib else {
            throw WispError.invalidArgument("VHDX log_size must be a multiple of 1 MiB (got \(logSize))")
        }
        let logical: UInt64 = 512
        let chunkRatio = (UInt64(1) << 23) * logical / blockSize
        let dataBlocks = (size + blockSize - 1) / blockSize
        let batEntries = dataBlocks + (dataBlocks - 1) / chunkRatio
        let logOffset = mib
        let metadataOffset = logOffset + logSize
        let batOffset = metadataOffset + mib
        let batLength = (batEntries * 8 + mib - 1) / mib * mib
        guard batLength <= UInt64(UInt32.max) else { throw WispError.invalidArgument("VHDX BAT too large; use a bigger block_size") }
        let dataStart = batOffset + batLength

        return BlockMappedWriter.Plan(virtualSize: size, blockSize: blockSize, dataStart: dataStart, blockPrefix: [],
                                      blockStride: blockSize) { offsets, _ in
            var head: [(UInt64, [UInt8])] = []
            var ident = [UInt8](repeating: 0, count: 64 << 10)
            ident.replaceSubrange(0..<8, with: Array("vhdxfile".utf8))
            for (i, u) in "Wisp".utf16.enumerated() { ident.putLE(UInt64(u), at: 8 + 2 * i, width: 2) }
            head.append((0, ident))
            let fileWrite = BlockMappedWriter.randomUUID(), dataWrite = BlockMappedWriter.randomUUID()
            for (sequence, at) in [(UInt64(0), UInt64(64 << 10)), (1, 128 << 10)] {
                var h = [UInt8](repeating: 0, count: 4096)
                h.replaceSubrange(0..<4, with: Array("head".utf8))
                h.putLE(sequence, at: 8, width: 8)
                h.replaceSubrange(16..<32, with: fileWrite)
                h.replaceSubrange(32..<48, with: dataWrite)
                h.putLE(1, at: 66, width: 2)
                h.putLE(logSize, at: 68, width: 4)
                h.putLE(logOffset, at: 72, width: 8)
                h.putLE(UInt64(CRC32C.checksum(h)), at: 4, width: 4)
                head.append((at, h))
            }
            var regions = [UInt8](repeating: 0, count: 64 << 10)
            regions.replaceSubrange(0..<4, with: Array("regi".utf8))
            regions.putLE(2, at: 8, width: 4)
            regions.replaceSubrange(16..<32, with: VhdxImage.batGUID)
            regions.putLE(batOffset, at: 32, width: 8)
            regions.putLE(batLength, at: 40, width: 4)
            regions.putLE(1, at: 44, width: 4)
            regions.replaceSubrange(48..<64, with: VhdxImage.metadataGUID)
            regions.putLE(metadataOffset, at: 64, width: 8)
            regions.putLE(mib, at: 72, width: 4)
            regions.putLE(1, at: 76, width: 4)
            regions.putLE(UInt64(CRC32C.checksum(regions)), at: 4, width: 4)
            head.append((192 << 10, regions))
            head.append((256 << 10, regions))

            // Metadata: table, then the items from 64 KiB.
            var meta = [UInt8](repeating: 0, count: (64 << 10) + 64)
            meta.replaceSubrange(0..<8, with: Array("metadata".utf8))
            let items: [([UInt8], [UInt8], UInt64)] = [
                (VhdxImage.fileParametersGUID, le(blockSize, 4) + le(options.preallocated ? 1 : 0, 4), 4),
                (VhdxImage.virtualDiskSizeGUID, le(size, 8), 6),
                (VhdxImage.page83GUID, BlockMappedWriter.randomUUID(), 6),
                (VhdxImage.logicalSectorGUID, le(logical, 4), 6),
                (VhdxImage.physicalSectorGUID, le(4096, 4), 6),
            ]
            meta.putLE(UInt64(items.count), at: 10, width: 2)
            var itemOffset = 64 << 10
            for (i, (id, value, flags)) in items.enumerated() {
                let at = 32 + 32 * i
                meta.replaceSubrange(at..<(at + 16), with: id)
                meta.putLE(UInt64(itemOffset), at: at + 16, width: 4)
                meta.putLE(UInt64(value.count), at: at + 20, width: 4)
                meta.putLE(flags, at: at + 24, width: 4)
                meta.replaceSubrange(itemOffset..<(itemOffset + value.count), with: value)
                itemOffset += value.count
            }
            head.append((metadataOffset, meta))

            var bat = [UInt8](repeating: 0, count: Int(batEntries * 8))
            for (i, o) in offsets.enumerated() {
                let index = i + i / Int(chunkRatio)
                if let o {
                    bat.putLE(o | 6, at: index * 8, width: 8)
                } else if options.preallocated {
                    bat.putLE(2, at: index * 8, width: 8)
                }
            }
            head.append((batOffset, bat))
            return (head, [])
        }
    }

    static func le(_ v: UInt64, _ width: Int) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: width)
        b.putLE(v, at: 0, width: width)
        return b
    }
}
