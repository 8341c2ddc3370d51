import WispCore

/// Lays out VDI 1.1 images as VirtualBox does: a 512-byte header, the block map at 512,
/// 1 MiB blocks from the next MiB boundary. Dynamic images store only blocks that hold
/// data (the rest 0xFFFFFFFF); static ones store every block in order.
enum VdiWriter {
    static let blockSize: UInt64 = 1 << 20

    static func plan(size requested: UInt64, options: BlockMappedWriteOptions) throws -> BlockMappedWriter.Plan {
        let size = (requested + 511) / 512 * 512
        guard size <= VdiImage.maxDiskSize else { throw WispError.invalidArgument("\(size) bytes is too large for a VDI image") }
        let blocks = (size + blockSize - 1) / blockSize
        guard blocks < UInt64(VdiImage.zero) else { throw WispError.invalidArgument("\(size) bytes is too large for a VDI image") }
        let mapOffset: UInt64 = 512
        let dataStart = (mapOffset + blocks * 4 + blockSize - 1) / blockSize * blockSize
        return BlockMappedWriter.Plan(virtualSize: size, blockSize: blockSize, dataStart: dataStart, blockPrefix: [],
                                      blockStride: blockSize) { offsets, _ in
            var header = [UInt8](repeating: 0, count: 512)
            let text = Array("<<< Oracle VM VirtualBox Disk Image >>>\n".utf8)
            header.replaceSubrange(0..<text.count, with: text)
            header.putLE(UInt64(VdiImage.signature), at: 64, width: 4)
            header.putLE(0x0001_0001, at: 68, width: 4)
            header.putLE(0x190, at: 72, width: 4)
            header.putLE(options.preallocated ? 2 : 1, at: 76, width: 4)
            header.putLE(mapOffset, at: 340, width: 4)
            header.putLE(dataStart, at: 344, width: 4)
            header.putLE(512, at: 360, width: 4)
            header.putLE(size, at: 368, width: 8)
            header.putLE(blockSize, at: 376, width: 4)
            header.putLE(blocks, at: 384, width: 4)
            header.putLE(UInt64(offsets.filter { $0 != nil }.count), at: 388, width: 4)
            header.replaceSubrange(392..<408, with: BlockMappedWriter.randomUUID())
            header.replaceSubrange(408..<424, with: BlockMappedWriter.randomUUID())
            var map = [UInt8](repeating: 0xFF, count: Int(blocks * 4))
            for (i, o) in offsets.enumerated() {
                if let o { map.putLE((o - dataStart) / blockSize, at: 4 * i, width: 4) }
            }
            return ([(0, header), (mapOffset, map)], [])
        }
    }
}
