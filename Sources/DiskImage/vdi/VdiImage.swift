import WispCore

/// Reads VirtualBox VDI images (version 1.1, little-endian): static and dynamic, a block
/// map of u32 indexes into the data area (0xFFFFFFFF unallocated, 0xFFFFFFFE zero).
/// Differencing images name their parent only by UUID, which Wisp cannot look up: refused.
enum VdiImage {
    static let signature: UInt32 = 0xBEDA_107F
    static let unallocated: UInt32 = 0xFFFF_FFFF
    static let zero: UInt32 = 0xFFFF_FFFE
    static let headerText = "<<< QEMU VM Virtual Disk Image >>>\n"
    /// Block sizes beyond this are refused (VirtualBox and qemu use 1 MiB).
    static let maxBlockSize: UInt64 = 256 << 20
    static let maxDiskSize: UInt64 = 1 << 50

    struct Layout: Sendable {
        var imageType: UInt32
        var size: UInt64
        var blockSize: UInt64
        var blocks: [MappedBlock]
        var uuid: [UInt8]
        var parentUUID: [UInt8]
        var subformat: String { imageType == 2 ? "static" : imageType == 4 ? "differencing" : "dynamic" }
        /// Header fields `wisp image check` compares with the block map.
        var blocksInImage: UInt64 = 0
        var blocksAllocated: UInt64 = 0
        /// The data-area index each mapped block uses, in block-map order (nil: none).
        var dataIndexes: [UInt32?] = []
        var metadata: [(what: String, offset: UInt64, length: UInt64)] = []
        /// Bytes of user data before each block's data (rarely other than 0).
        var blockExtra: UInt64 = 0
        /// Where the block map starts.
        var mapOffset: UInt64 = 0
        /// What a lenient parse (`wisp image check`) found wrong and went past: block map
        /// entries beyond the image's blocks or the file (left unallocated).
        var problems: [WispError] = []
        var isDifferencing: Bool { imageType == 4 || parentUUID.contains { $0 != 0 } }

        var header: BlockMappedHeader {
            BlockMappedHeader(format: .vdi, subformat: isDifferencing ? "differencing" : subformat, virtualSize: size,
                              blockSize: blockSize, allocatedBlocks: dataIndexes.reduce(0) { $0 + ($1 == nil ? 0 : 1) },
                              uuid: VdiImage.uuidString(uuid),
                              parentUUID: isDifferencing ? VdiImage.uuidString(parentUUID) : nil)
        }
    }

    /// `lenient`: for `wisp image check`, block map entries beyond the image's blocks or
    /// the file go to `problems` (those blocks read as unallocated) instead of ending the
    /// parse; everything else is refused as usual.
    static func parse(_ file: any BlockDevice, lenient: Bool = false) throws -> Layout {
        let name = file.name
        var problems: [WispError] = []
        func fail(_ error: WispError) throws {
            guard lenient else { throw error }
            // One more than a check report lists, so it says there were more.
            if problems.count <= CheckReport.maxListed { problems.append(error) }
        }
        let header = try file.readStructure("VDI header", at: 0, count: 512)
        let r = HeaderFields(bytes: header, name: name, structure: "VDI header", base: 0)
        guard try r.le32(64) == signature else {
            throw WispError.corrupt(name, "VDI header", at: 64, "signature is not 0xbeda107f")
        }
        let version = try r.le32(68)
        guard version == 0x0001_0001 else {
            throw WispError.unsupported(name, "VDI version \(version >> 16).\(version & 0xFFFF) at offset 68 is not 1.1")
        }
        let imageType = try r.le32(76)
        guard [1, 2, 4].contains(imageType) else {
            throw WispError.unsupported(name, "VDI image type \(imageType) at offset 76 is not dynamic (1), static (2) or differencing (4)")
        }
        let mapOffset = UInt64(try r.le32(340))
        let dataOffset = UInt64(try r.le32(344))
        let sectorSize = try r.le32(360)
        guard sectorSize == 512 else {
            throw WispError.unsupported(name, "VDI sector size \(sectorSize) at offset 360 is not 512")
        }
        let size = try r.le64(368)
        let blockSize = UInt64(try r.le32(376))
        let blockExtra = UInt64(try r.le32(380))
        let count = UInt64(try r.le32(384))
        guard size <= maxDiskSize else {
            throw WispError.corrupt(name, "VDI header", at: 368, "disk size \(size) is absurd")
        }
        guard blockSize >= 512, blockSize <= maxBlockSize, blockSize % 512 == 0, blockExtra < blockSize else {
            throw WispError.corrupt(name, "VDI header", at: 376, "block size \(blockSize) (extra \(blockExtra)) is not a multiple of 512 up to 256 MiB")
        }
        guard count * blockSize >= size else {
            throw WispError.corrupt(name, "VDI header", at: 384, "\(count) blocks of \(blockSize) bytes cannot hold a \(size)-byte disk")
        }
        let needed = Int((size + blockSize - 1) / blockSize)
        let map = try file.readStructure("VDI block map", at: mapOffset, count: needed * 4)
        var blocks: [MappedBlock] = []
        var indexes: [UInt32?] = []
        blocks.reserveCapacity(needed)
        indexes.reserveCapacity(needed)
        for i in 0..<needed {
            let e = UInt32(map[4 * i]) | UInt32(map[4 * i + 1]) << 8 | UInt32(map[4 * i + 2]) << 16 | UInt32(map[4 * i + 3]) << 24
            switch e {
            case unallocated: blocks.append(.unallocated)
            case zero: blocks.append(.zero)
            default:
                guard UInt64(e) < count else {
                    try fail(WispError.corrupt(name, "VDI block map entry \(i)", at: mapOffset + UInt64(4 * i), "block \(e) is beyond the \(count) blocks of the image"))
                    blocks.append(.unallocated)
                    indexes.append(nil)
                    continue
                }
                let at = dataOffset + UInt64(e) * (blockSize + blockExtra) + blockExtra
                guard at < file.size else {
                    try fail(WispError.corrupt(name, "VDI block map entry \(i)", at: mapOffset + UInt64(4 * i), "block \(e) lies at \(at), beyond the end of the file (\(file.size) bytes)"))
                    blocks.append(.unallocated)
                    indexes.append(nil)
                    continue
                }
                blocks.append(.data(at))
            }
            indexes.append(e >= zero ? nil : e)
        }
        var layout = Layout(imageType: imageType, size: size, blockSize: blockSize, blocks: blocks,
                            uuid: try r.slice(392, 16), parentUUID: try r.slice(440, 16))
        layout.blocksInImage = count
        layout.blocksAllocated = UInt64(try r.le32(388))
        layout.dataIndexes = indexes
        layout.metadata = [("the header", 0, 512), ("the block map", mapOffset, UInt64(needed) * 4)]
        layout.blockExtra = blockExtra
        layout.mapOffset = mapOffset
        layout.problems = problems
        return layout
    }

    static func open(_ file: any BlockDevice) throws -> BlockMappedImage {
        let layout = try parse(file)
        if layout.isDifferencing {
            throw WispError.unsupported(file.name, "differencing VDI image: its parent is named only by UUID \(uuidString(layout.parentUUID)), which Wisp cannot look up; clone it to a full image in VirtualBox (VBoxManage clonemedium) first")
        }
        return try BlockMappedImage(name: file.name, format: .vdi, subformat: layout.subformat, size: layout.size,
                                    blockSize: layout.blockSize, blocks: layout.blocks, file: file)
    }

    /// VirtualBox's UUID text (the first three fields little-endian).
    static func uuidString(_ b: [UInt8]) -> String {
        guard b.count == 16 else { return "?" }
        let order = [3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15]
        return order.map { $0 < 0 ? "-" : String(format2(b[$0])) }.joined()
    }

    private static func format2(_ v: UInt8) -> String {
        let s = String(v, radix: 16)
        return s.count == 1 ? "0" + s : s
    }
}
