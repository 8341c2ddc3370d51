import Foundation
import WispCore

/// Lays out VHD images as qemu-img's vpc driver does: a fixed image is the data then the
/// footer; a dynamic one is a footer copy, the dynamic header at 512, the BAT at 1536,
/// then 2 MiB blocks each behind a 512-byte all-ones sector bitmap, then the footer.
///
/// Size: without force_size the size is rounded up to the next CHS geometry (what Virtual
/// PC and qemu read back); with force_size (and for Azure) the exact size is kept in
/// current_size and the geometry is the maximum, which tells every reader to use it.
enum VhdWriter {
    static let blockSize: UInt64 = 2 << 20

    static func sizing(_ requested: UInt64, options: BlockMappedWriteOptions) throws -> (size: UInt64, geometry: (UInt16, UInt8, UInt8)) {
        var size = (requested + 511) / 512 * 512
        if options.azure { size = BlockMappedWriteOptions.azureSize(size) }
        let max = (UInt16(65535), UInt8(16), UInt8(255))
        if options.forceSize || options.azure {
            guard size / 512 <= VhdFooter.maxSectors else { throw tooLarge(size) }
            return (size, max)
        }
        // qemu's loop: grow the sector count until the geometry holds it.
        let sectors = min(VhdFooter.maxGeometrySectors, size / 512)
        var g = (cylinders: UInt16(0), heads: UInt8(0), sectors: UInt8(0))
        var i: UInt64 = 0
        while sectors > UInt64(g.cylinders) * UInt64(g.heads) * UInt64(g.sectors) {
            g = VhdFooter.geometry(forSectors: sectors + i)
            i += 1
        }
        let chs = UInt64(g.cylinders) * UInt64(g.heads) * UInt64(g.sectors)
        if chs == VhdFooter.maxGeometrySectors {
            guard size / 512 <= VhdFooter.maxSectors else { throw tooLarge(size) }
            return (size, (g.cylinders, g.heads, g.sectors))
        }
        return (chs * 512, (g.cylinders, g.heads, g.sectors))
    }

    static func tooLarge(_ size: UInt64) -> WispError {
        WispError.invalidArgument("a VHD holds at most 2040 GiB; \(size) bytes is too large (use vhdx)")
    }

    static func plan(size requested: UInt64, options: BlockMappedWriteOptions) throws -> BlockMappedWriter.Plan {
        let (size, g) = try sizing(requested, options: options)
        let fixed = options.preallocated || options.azure
        var footer = VhdFooter(dataOffset: fixed ? UInt64.max : 512, creatorApp: Array("wisp".utf8),
                               originalSize: size, currentSize: size, cylinders: g.0, heads: g.1, sectorsPerTrack: g.2,
                               diskType: fixed ? .fixed : .dynamic, uuid: BlockMappedWriter.randomUUID(),
                               timestamp: UInt32(truncatingIfNeeded: max(0, Int64(Date().timeIntervalSince1970) - 946_684_800)))
        if fixed {
            return BlockMappedWriter.Plan(virtualSize: size, blockSize: blockSize, dataStart: 0, blockPrefix: [],
                                          blockStride: blockSize, exactDataLength: true) { _, _ in
                ([], footer.encoded())
            }
        }
        let entries = Int((size + blockSize - 1) / blockSize)
        let batOffset: UInt64 = 1536
        let batBytes = (UInt64(entries) * 4 + 511) / 512 * 512
        let dataStart = batOffset + batBytes
        return BlockMappedWriter.Plan(virtualSize: size, blockSize: blockSize, dataStart: dataStart,
                                      blockPrefix: [UInt8](repeating: 0xFF, count: 512),
                                      blockStride: blockSize + 512) { offsets, _ in
            footer.dataOffset = 512
            let encodedFooter = footer.encoded()
            var header = [UInt8](repeating: 0, count: 1024)
            header.replaceSubrange(0..<8, with: Array("cxsparse".utf8))
            header.putBE(UInt64.max, at: 8, width: 8)
            header.putBE(batOffset, at: 16, width: 8)
            header.putBE(0x0001_0000, at: 24, width: 4)
            header.putBE(UInt64(entries), at: 28, width: 4)
            header.putBE(blockSize, at: 32, width: 4)
            header.putBE(UInt64(VhdFooter.checksum(header, skipping: 36)), at: 36, width: 4)
            var bat = [UInt8](repeating: 0xFF, count: Int(batBytes))
            for (i, o) in offsets.enumerated() {
                if let o { bat.putBE((o - 512) / 512, at: 4 * i, width: 4) }
            }
            return ([(0, encodedFooter), (512, header), (batOffset, bat)], encodedFooter)
        }
    }
}
