import WispCore

/// Reads VHDX images (MS-VHDX, little-endian): the newer of the two headers whose
/// CRC-32C holds, the region table (BAT and metadata regions), the metadata items and the
/// BAT, whose payload entries are interleaved with one sector-bitmap entry per chunk.
/// An image whose log needs replaying is refused, never read as if the log were empty.
/// A differencing image names its parent in the parent locator metadata item; partly
/// present blocks read sector by sector through the chunk's sector bitmap block.
enum VhdxImage {
    static let batGUID = guid("2DC27766-F623-4200-9D64-115E9BFD4A08")
    static let metadataGUID = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
    static let fileParametersGUID = guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
    static let virtualDiskSizeGUID = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
    static let page83GUID = guid("BECA12AB-B2E6-4523-93EF-C309E000C746")
    static let logicalSectorGUID = guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
    static let physicalSectorGUID = guid("CDA348C7-445D-4471-9CC9-E9885251C556")
    static let parentLocatorGUID = guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
    /// The LocatorType of a VHDX parent locator (MS-VHDX 2.6.2.6.1).
    static let vhdxLocatorTypeGUID = guid("B04AEFB7-D19E-4A81-B789-25B8E9445913")
    static let maxVirtualSize: UInt64 = 64 << 40

    struct Layout: Sendable {
        var size: UInt64
        var blockSize: UInt64
        var logicalSectorSize: UInt32
        var physicalSectorSize: UInt32
        var leaveBlocksAllocated: Bool
        var hasParent: Bool
        var blocks: [MappedBlock]
        var subformat: String { hasParent ? "differencing" : leaveBlocksAllocated ? "fixed" : "dynamic" }
        var dataWriteGUID: [UInt8] = []
        /// Differencing images: parent_linkage and the parent's recorded names.
        var parentLinkage: String?
        var parentLocators: [BlockMappedHeader.ParentLocator] = []
        /// Where the metadata lies, for `wisp image check`.
        var metadata: [(what: String, offset: UInt64, length: UInt64)] = []
        /// The BAT region, the payload blocks per chunk (one sector bitmap entry follows
        /// each chunk's payload entries) and the log region the current header names.
        var bat: (offset: UInt64, length: UInt64) = (0, 0)
        var chunkRatio: UInt64 = 0
        var log: (offset: UInt64, length: UInt64) = (0, 0)
        /// What a lenient parse (`wisp image check`) found wrong and went past: a log that
        /// needs replay, BAT entries outside the file or in an invalid state (those blocks
        /// read as unallocated).
        var problems: [WispError] = []

        var header: BlockMappedHeader {
            BlockMappedHeader(format: .vhdx, subformat: subformat, virtualSize: size, blockSize: blockSize,
                              allocatedBlocks: blocks.reduce(0) { if case .data = $1 { return $0 + 1 }; if case .partial = $1 { return $0 + 1 }; return $0 },
                              logicalSectorSize: logicalSectorSize, physicalSectorSize: physicalSectorSize,
                              uuid: VhdxImage.guidString(dataWriteGUID), parentUUID: parentLinkage, parentLocators: parentLocators)
        }
    }

    /// A GUID's text form from its on-disk bytes (first three fields little-endian).
    static func guidString(_ b: [UInt8]) -> String {
        guard b.count == 16 else { return "?" }
        let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15]
        let hex = order.map { String(b[$0] >> 4, radix: 16) + String(b[$0] & 15, radix: 16) }
        return [0..<4, 4..<6, 6..<8, 8..<10, 10..<16].map { hex[$0].joined() }.joined(separator: "-")
    }

    /// A GUID's on-disk bytes (first three fields little-endian) from its text form.
    static func guid(_ text: String) -> [UInt8] {
        let hexDigits = text.filter { $0 != "-" }
        var raw: [UInt8] = []
        var i = hexDigits.startIndex
        while i < hexDigits.endIndex {
            let j = hexDigits.index(i, offsetBy: 2)
            raw.append(UInt8(hexDigits[i..<j], radix: 16) ?? 0)
            i = j
        }
        guard raw.count == 16 else { return raw }
        return [raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6]] + Array(raw[8...])
    }

    static func crcHolds(_ bytes: [UInt8]) -> Bool {
        var copy = bytes
        let stored = UInt32(copy[4]) | UInt32(copy[5]) << 8 | UInt32(copy[6]) << 16 | UInt32(copy[7]) << 24
        copy.replaceSubrange(4..<8, with: [0, 0, 0, 0])
        return CRC32C.checksum(copy) == stored
    }

    /// `lenient`: for `wisp image check`, a log that needs replay and bad payload BAT
    /// entries go to `problems` (those blocks read as unallocated) instead of ending the
    /// parse; everything else is refused as usual.
    static func parse(_ file: any BlockDevice, lenient: Bool = false) throws -> Layout {
        let name = file.name
        var problems: [WispError] = []
        func fail(_ error: WispError) throws {
            guard lenient else { throw error }
            // One more than a check report lists, so it says there were more.
            if problems.count <= CheckReport.maxListed { problems.append(error) }
        }
        let ident = try file.readStructure("VHDX file identifier", at: 0, count: 8)
        guard ident == Array("vhdxfile".utf8) else {
            throw WispError.corrupt(name, "VHDX file identifier", at: 0, "no \"vhdxfile\" signature")
        }
        // The header with the highest sequence number among those whose checksum holds.
        var best: (seq: UInt64, r: HeaderFields)?
        for at: UInt64 in [64 << 10, 128 << 10] {
            guard let bytes = try? file.readStructure("VHDX header", at: at, count: 4096),
                  Array(bytes[0..<4]) == Array("head".utf8), crcHolds(bytes) else { continue }
            let r = HeaderFields(bytes: bytes, name: name, structure: "VHDX header", base: at)
            let seq = try r.le64(8)
            if best == nil || seq > best!.seq { best = (seq, r) }
        }
        guard let header = best?.r else {
            throw WispError.corrupt(name, "VHDX headers", at: 64 << 10, "neither header (at 64 KiB and 128 KiB) has a valid signature and CRC-32C")
        }
        let logGUID = try header.slice(48, 16)
        let logOffset = try header.le64(72)
        let logLength = UInt64(try header.le32(68))
        if logGUID.contains(where: { $0 != 0 }) {
            guard lenient else {
                throw WispError.unsupported(name, "the VHDX log (at offset \(logOffset), \(logLength) bytes) holds writes that were never applied; open the image once in Hyper-V or run qemu-img check -r all on it to replay the log, then try again")
            }
            problems.append(WispError.corrupt(name, "VHDX log", at: logOffset, "\(logLength) bytes hold writes that were never applied (the current header at offset \(header.base) names log GUID \(guidString(logGUID))); open the image once in Hyper-V or run qemu-img check -r all on it to replay the log"))
        }
        let version = try header.le16(66)
        guard version == 1 else {
            throw WispError.unsupported(name, "VHDX header version \(version) at offset \(header.base + 66) is not 1")
        }

        // Region table: the first copy whose checksum holds.
        var regions: HeaderFields?
        for at: UInt64 in [192 << 10, 256 << 10] {
            guard let bytes = try? file.readStructure("VHDX region table", at: at, count: 64 << 10),
                  Array(bytes[0..<4]) == Array("regi".utf8), crcHolds(bytes) else { continue }
            regions = HeaderFields(bytes: bytes, name: name, structure: "VHDX region table", base: at)
            break
        }
        guard let regions else {
            throw WispError.corrupt(name, "VHDX region table", at: 192 << 10, "neither copy has a valid signature and CRC-32C")
        }
        let count = try regions.le32(8)
        guard count <= 2047 else {
            throw WispError.corrupt(name, "VHDX region table", at: regions.base + 8, "\(count) entries (at most 2047)")
        }
        var bat: (offset: UInt64, length: UInt64)?
        var metadata: (offset: UInt64, length: UInt64)?
        for i in 0..<Int(count) {
            let at = 16 + 32 * i
            let id = try regions.slice(at, 16)
            let offset = try regions.le64(at + 16)
            let length = UInt64(try regions.le32(at + 24))
            let required = try regions.le32(at + 28) & 1 != 0
            let (end, overflow) = offset.addingReportingOverflow(length)
            guard !overflow, end <= file.size, offset >= (1 << 20) else {
                throw WispError.corrupt(name, "VHDX region table entry \(i)", at: regions.base + UInt64(at), "region at \(offset), \(length) bytes, is outside the file (\(file.size) bytes) or inside its header section")
            }
            if id == batGUID { bat = (offset, length) }
            else if id == metadataGUID { metadata = (offset, length) }
            else if required {
                throw WispError.unsupported(name, "VHDX region table entry \(i) at offset \(regions.base + UInt64(at)) is a required region Wisp does not know")
            }
        }
        guard let bat, let metadata else {
            throw WispError.corrupt(name, "VHDX region table", at: regions.base, "no \(bat == nil ? "BAT" : "metadata") region")
        }
        if bat.offset < metadata.offset + metadata.length && metadata.offset < bat.offset + bat.length {
            throw WispError.corrupt(name, "VHDX region table", at: regions.base, "the BAT and metadata regions overlap")
        }

        // Metadata.
        let metaBytes = try file.readStructure("VHDX metadata table", at: metadata.offset, count: Int(min(metadata.length, 64 << 10)))
        let m = HeaderFields(bytes: metaBytes, name: name, structure: "VHDX metadata table", base: metadata.offset)
        guard try m.slice(0, 8) == Array("metadata".utf8) else {
            throw WispError.corrupt(name, "VHDX metadata table", at: metadata.offset, "no \"metadata\" signature")
        }
        let items = Int(try m.le16(10))
        guard items <= 2047 else {
            throw WispError.corrupt(name, "VHDX metadata table", at: metadata.offset + 10, "\(items) entries (at most 2047)")
        }
        func item(_ id: [UInt8], _ what: String, length: Int) throws -> HeaderFields? {
            for i in 0..<items {
                let at = 32 + 32 * i
                guard try m.slice(at, 16) == id else { continue }
                let offset = UInt64(try m.le32(at + 16))
                let itemLength = Int(try m.le32(at + 20))
                guard itemLength >= length, offset >= (64 << 10), offset + UInt64(length) <= metadata.length else {
                    throw WispError.corrupt(name, "VHDX metadata item \(what)", at: metadata.offset + UInt64(at), "at \(offset), \(itemLength) bytes: outside the metadata region")
                }
                let bytes = try file.readStructure("VHDX metadata item \(what)", at: metadata.offset + offset, count: length)
                return HeaderFields(bytes: bytes, name: name, structure: "VHDX metadata item \(what)", base: metadata.offset + offset)
            }
            return nil
        }
        func required(_ id: [UInt8], _ what: String, length: Int) throws -> HeaderFields {
            guard let r = try item(id, what, length: length) else {
                throw WispError.corrupt(name, "VHDX metadata", at: metadata.offset, "no \(what) item")
            }
            return r
        }
        let parameters = try required(fileParametersGUID, "file parameters", length: 8)
        let blockSize = UInt64(try parameters.le32(0))
        let flags = try parameters.le32(4)
        let size = try required(virtualDiskSizeGUID, "virtual disk size", length: 8).le64(0)
        let logical = try required(logicalSectorGUID, "logical sector size", length: 4).le32(0)
        let physical = try required(physicalSectorGUID, "physical sector size", length: 4).le32(0)
        guard blockSize >= (1 << 20), blockSize <= (256 << 20), blockSize & (blockSize - 1) == 0 else {
            throw WispError.corrupt(name, "VHDX file parameters", at: parameters.base, "block size \(blockSize) is not a power of two from 1 MiB to 256 MiB")
        }
        guard logical == 512 || logical == 4096 else {
            throw WispError.corrupt(name, "VHDX logical sector size", "\(logical) is neither 512 nor 4096")
        }
        guard size > 0, size <= maxVirtualSize, size % UInt64(logical) == 0 else {
            throw WispError.corrupt(name, "VHDX virtual disk size", "\(size) is not a multiple of the \(logical)-byte sector up to 64 TiB")
        }
        let hasParent = flags & 2 != 0
        var linkage: String?
        var locators: [BlockMappedHeader.ParentLocator] = []
        var locatorRegion: (what: String, offset: UInt64, length: UInt64)?
        if hasParent {
            guard let (entries, region) = try parentLocatorItem(file: file, metadata: metadata, table: m, items: items) else {
                throw WispError.corrupt(name, "VHDX metadata", at: metadata.offset, "a differencing image without a parent locator item")
            }
            locatorRegion = region
            // Recorded as "{GUID}"; compared with the parent's DataWriteGuid as text.
            linkage = entries["parent_linkage"].map { String($0.filter { $0 != "{" && $0 != "}" }).lowercased() }
            for key in ["relative_path", "volume_path", "absolute_win32_path"] {
                if let p = entries[key], !p.isEmpty { locators.append(.init(key: key, path: p)) }
            }
            guard linkage != nil else {
                throw WispError.corrupt(name, "VHDX parent locator", at: region.offset, "has no parent_linkage entry")
            }
        }

        // BAT: payload entry i sits at i + i / chunkRatio.
        let chunkRatio = (UInt64(1) << 23) * UInt64(logical) / blockSize
        let dataBlocks = (size + blockSize - 1) / blockSize
        let lastIndex = (dataBlocks - 1) + (dataBlocks - 1) / chunkRatio
        let batBytes = Int((lastIndex + 1) * 8)
        guard UInt64(batBytes) <= bat.length else {
            throw WispError.corrupt(name, "VHDX BAT", at: bat.offset, "region of \(bat.length) bytes cannot hold \(lastIndex + 1) entries")
        }
        let table = try file.readStructure("VHDX BAT", at: bat.offset, count: batBytes)
        let t = HeaderFields(bytes: table, name: name, structure: "VHDX BAT", base: bat.offset)
        var blocks: [MappedBlock] = []
        blocks.reserveCapacity(Int(dataBlocks))
        for i in 0..<dataBlocks {
            let index = Int(i + i / chunkRatio)
            let entry = try t.le64(index * 8)
            let state = entry & 7
            let offset = entry & ~UInt64(0xFFFFF)
            switch state {
            case 0, 1: blocks.append(.unallocated)
            case 2, 3: blocks.append(.zero)
            case 6, 7 where state == 6 || hasParent:
                guard offset >= (1 << 20), offset < file.size else {
                    try fail(WispError.corrupt(name, "VHDX BAT entry \(index)", at: bat.offset + UInt64(index * 8), "payload block at \(offset) is outside the file (\(file.size) bytes)"))
                    blocks.append(.unallocated)
                    continue
                }
                if state == 6 {
                    blocks.append(.data(offset))
                    continue
                }
                // Partly present: the chunk's sector bitmap entry follows its payload entries.
                let chunk = i / chunkRatio
                let sbIndex = Int(chunk * (chunkRatio + 1) + chunkRatio)
                let sbEntry = sbIndex * 8 + 8 <= Int(bat.length)
                    ? try HeaderFields(bytes: try file.readStructure("VHDX BAT", at: bat.offset + UInt64(sbIndex * 8), count: 8),
                                       name: name, structure: "VHDX BAT", base: bat.offset + UInt64(sbIndex * 8)).le64(0)
                    : 0
                let sbOffset = sbEntry & ~UInt64(0xFFFFF)
                guard sbEntry & 7 == 6, sbOffset >= (1 << 20), sbOffset <= file.size, file.size - sbOffset >= (1 << 20) else {
                    try fail(WispError.corrupt(name, "VHDX BAT entry \(sbIndex)", at: bat.offset + UInt64(sbIndex * 8), "the sector bitmap block of a partly present payload block is missing or outside the file"))
                    blocks.append(.unallocated)
                    continue
                }
                let bitsPerBlock = blockSize / UInt64(logical)
                blocks.append(.partial(data: offset, bitmap: sbOffset + (i % chunkRatio) * bitsPerBlock / 8))
            default:
                try fail(WispError.corrupt(name, "VHDX BAT entry \(index)", at: bat.offset + UInt64(index * 8), "state \(state) is not valid for a payload block of a non-differencing image"))
                blocks.append(.unallocated)
            }
        }
        var layout = Layout(size: size, blockSize: blockSize, logicalSectorSize: logical, physicalSectorSize: physical,
                            leaveBlocksAllocated: flags & 1 != 0, hasParent: hasParent, blocks: blocks)
        layout.dataWriteGUID = try header.slice(32, 16)
        layout.parentLinkage = linkage
        layout.parentLocators = locators
        layout.metadata = [("the header section", 0, 1 << 20), ("the BAT region", bat.offset, bat.length),
                           ("the metadata region", metadata.offset, metadata.length)]
        if let locatorRegion { layout.metadata.append(locatorRegion) }
        layout.bat = bat
        layout.chunkRatio = chunkRatio
        layout.log = (logOffset, logLength)
        layout.problems = problems
        return layout
    }

    /// The parent locator item's key/value pairs (UTF-16LE both), checked: type GUID,
    /// entry count, every key and value inside the item.
    static func parentLocatorItem(file: any BlockDevice, metadata: (offset: UInt64, length: UInt64),
                                  table m: HeaderFields, items: Int) throws
        -> (entries: [String: String], region: (what: String, offset: UInt64, length: UInt64))? {
        let name = file.name
        for i in 0..<items {
            let at = 32 + 32 * i
            guard try m.slice(at, 16) == parentLocatorGUID else { continue }
            let offset = UInt64(try m.le32(at + 16))
            let length = UInt64(try m.le32(at + 20))
            guard offset >= (64 << 10), length >= 20, length <= (64 << 10), offset + length <= metadata.length else {
                throw WispError.corrupt(name, "VHDX parent locator item", at: metadata.offset + UInt64(at), "at \(offset), \(length) bytes: outside the metadata region or not 20 bytes to 64 KiB long")
            }
            let base = metadata.offset + offset
            let bytes = try file.readStructure("VHDX parent locator", at: base, count: Int(length))
            let r = HeaderFields(bytes: bytes, name: name, structure: "VHDX parent locator", base: base)
            guard try r.slice(0, 16) == vhdxLocatorTypeGUID else {
                throw WispError.unsupported(name, "the VHDX parent locator at offset \(base) is not of the VHDX locator type")
            }
            let count = Int(try r.le16(18))
            guard 20 + count * 12 <= bytes.count else {
                throw WispError.corrupt(name, "VHDX parent locator", at: base + 18, "\(count) entries do not fit in its \(length) bytes")
            }
            var entries: [String: String] = [:]
            for e in 0..<count {
                let ka = Int(try r.le32(20 + 12 * e)), va = Int(try r.le32(24 + 12 * e))
                let kl = Int(try r.le16(28 + 12 * e)), vl = Int(try r.le16(30 + 12 * e))
                let key = VhdImage.decodeUTF16(try r.slice(ka, kl), bigEndian: false)
                let value = VhdImage.decodeUTF16(try r.slice(va, vl), bigEndian: false)
                entries[key] = value
            }
            return (entries, ("the parent locator", base, length))
        }
        return nil
    }

    /// Opens the image; a differencing image reads through `parent` (the chain resolver
    /// found and checked it) and is refused without one.
    static func open(_ file: any BlockDevice, parent: (any BlockDevice)? = nil) throws -> BlockMappedImage {
        let layout = try parse(file)
        if layout.hasParent, parent == nil {
            throw WispError.unsupported(file.name, "a differencing VHDX image needs its parent (\(layout.parentLocators.first?.path ?? "unnamed")); open it through its backing chain")
        }
        return try BlockMappedImage(name: file.name, format: .vhdx, subformat: layout.subformat, size: layout.size,
                                    blockSize: layout.blockSize, blocks: layout.blocks, file: file,
                                    parent: layout.hasParent ? parent : nil,
                                    bitmapSectorSize: UInt64(layout.logicalSectorSize), bitmapOrder: .lsbFirst)
    }
}
