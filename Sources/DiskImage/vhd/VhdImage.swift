import Foundation
import WispCore

/// Reads VHD images (qemu's "vpc"): fixed (data then footer), dynamic (footer copy,
/// dynamic header, BAT of 512-byte sector offsets, blocks of sector bitmap + data) and
/// differencing (a dynamic image whose sector bitmaps say which sectors it holds; the
/// rest reads as the parent its locators name, which the chain resolver finds and checks).
enum VhdImage {
    /// What the headers say, checked against the file size.
    struct Layout: Sendable {
        var footer: VhdFooter
        var blockSize: UInt64
        var blocks: [MappedBlock]
        var subformat: String { footer.diskType == .fixed ? "fixed" : footer.diskType == .dynamic ? "dynamic" : "differencing" }
        /// Differencing images: the parent's unique id and names, as recorded.
        var parentUUID: [UInt8]?
        var parentLocators: [BlockMappedHeader.ParentLocator] = []
        var allocatedBlocks: Int { blocks.reduce(0) { if case .zero = $1 { return $0 }; if case .unallocated = $1 { return $0 }; return $0 + 1 } }
        /// Where the metadata lies, for `wisp image check`.
        var metadata: [(what: String, offset: UInt64, length: UInt64)] = []
        /// Bytes before each stored block's data (its sector bitmap).
        var bitmapBytes: UInt64 = 0
        /// Where the BAT starts (dynamic and differencing images).
        var tableOffset: UInt64 = 0
        /// What a lenient parse (`wisp image check`) found wrong and went past: the block
        /// of a BAT entry outside the file (left unallocated), a dynamic header checksum.
        var problems: [WispError] = []

        var header: BlockMappedHeader {
            BlockMappedHeader(format: .vhd, subformat: subformat, virtualSize: footer.virtualSize, blockSize: blockSize,
                              allocatedBlocks: footer.diskType == .fixed ? blocks.count : allocatedBlocks,
                              uuid: VhdImage.uuidString(footer.uuid), parentUUID: parentUUID.map(VhdImage.uuidString),
                              parentLocators: parentLocators)
        }
    }

    static let unallocatedEntry: UInt32 = 0xFFFF_FFFF
    /// Block sizes beyond this are refused (the specification's default is 2 MiB).
    static let maxBlockSize: UInt64 = 256 << 20

    /// `lenient`: for `wisp image check`, a bad dynamic header checksum and BAT entries
    /// outside the file go to `problems` (those blocks read as unallocated) instead of
    /// ending the parse; everything else is refused as usual.
    static func parse(_ file: any BlockDevice, lenient: Bool = false) throws -> Layout {
        let name = file.name
        var problems: [WispError] = []
        func fail(_ error: WispError) throws {
            guard lenient else { throw error }
            // One more than a check report lists, so it says there were more.
            if problems.count <= CheckReport.maxListed { problems.append(error) }
        }
        guard file.size >= 512 else {
            throw WispError.corrupt(name, "VHD footer", "the file is \(file.size) bytes, too short for a footer")
        }
        // The footer at the end; a dynamic image whose last sector was lost keeps a copy at 0.
        let tailOffset = file.size - 512
        var footer: VhdFooter
        do {
            footer = try VhdFooter.parse(try file.read(at: tailOffset, count: 512), name: name, at: tailOffset)
        } catch let error as WispError where error.kind == .corrupt {
            guard let copy = try? VhdFooter.parse(try file.read(at: 0, count: 512), name: name, at: 0),
                  copy.diskType != .fixed else { throw error }
            footer = copy
        }
        let size = footer.virtualSize
        guard size / 512 <= VhdFooter.maxSectors else {
            throw WispError.corrupt(name, "VHD footer", at: tailOffset + 48, "virtual size \(size) exceeds the VHD limit of 2040 GiB")
        }
        if footer.diskType == .fixed {
            // Data is the file up to the footer; qemu reads past it as zeros.
            let blockSize: UInt64 = 2 << 20
            let count = Int((size + blockSize - 1) / blockSize)
            var blocks: [MappedBlock] = []
            blocks.reserveCapacity(count)
            for i in 0..<count {
                let offset = UInt64(i) * blockSize
                blocks.append(offset < tailOffset ? .data(offset) : .zero)
            }
            return Layout(footer: footer, blockSize: blockSize, blocks: blocks,
                          metadata: [("the footer", tailOffset, 512)])
        }
        let headerOffset = footer.dataOffset
        let header = try file.readStructure("VHD dynamic header", at: headerOffset, count: 1024)
        let r = HeaderFields(bytes: header, name: name, structure: "VHD dynamic header", base: headerOffset)
        guard try r.slice(0, 8) == Array("cxsparse".utf8) else {
            throw WispError.corrupt(name, "VHD dynamic header", at: headerOffset, "no \"cxsparse\" cookie")
        }
        let stored = try r.be32(36)
        let computed = VhdFooter.checksum(header, skipping: 36)
        if stored != computed {
            try fail(WispError.corrupt(name, "VHD dynamic header", at: headerOffset, "checksum \(hex(stored)) does not match (\(hex(computed)))"))
        }
        let tableOffset = try r.be64(16)
        let entries = UInt64(try r.be32(28))
        let blockSize = UInt64(try r.be32(32))
        guard blockSize >= 512, blockSize <= maxBlockSize, blockSize & (blockSize - 1) == 0 else {
            throw WispError.corrupt(name, "VHD dynamic header", at: headerOffset + 32, "block size \(blockSize) is not a power of two between 512 bytes and 256 MiB")
        }
        guard entries * blockSize >= size else {
            throw WispError.corrupt(name, "VHD dynamic header", at: headerOffset + 28, "\(entries) BAT entries of \(blockSize) bytes cannot hold a \(size)-byte disk")
        }
        let needed = Int((size + blockSize - 1) / blockSize)
        let bat = try file.readStructure("VHD BAT", at: tableOffset, count: needed * 4)
        let bitmapBytes = ((blockSize / 512 + 7) / 8 + 511) / 512 * 512
        let differencing = footer.diskType == .differencing
        var blocks: [MappedBlock] = []
        blocks.reserveCapacity(needed)
        for i in 0..<needed {
            let e = UInt32(bat[4 * i]) << 24 | UInt32(bat[4 * i + 1]) << 16 | UInt32(bat[4 * i + 2]) << 8 | UInt32(bat[4 * i + 3])
            if e == unallocatedEntry {
                blocks.append(.unallocated)
                continue
            }
            let dataStart = UInt64(e) * 512 + bitmapBytes
            guard dataStart < file.size else {
                try fail(WispError.corrupt(name, "VHD BAT entry \(i)", at: tableOffset + UInt64(4 * i), "sector \(e) lies beyond the end of the file (\(file.size) bytes)"))
                blocks.append(.unallocated)
                continue
            }
            blocks.append(differencing ? .partial(data: dataStart, bitmap: UInt64(e) * 512) : .data(dataStart))
        }
        var layout = Layout(footer: footer, blockSize: blockSize, blocks: blocks)
        layout.bitmapBytes = bitmapBytes
        layout.tableOffset = tableOffset
        layout.problems = problems
        layout.metadata = [("the footer copy", 0, 512), ("the dynamic header", headerOffset, 1024),
                           ("the BAT", tableOffset, UInt64(needed) * 4), ("the footer", tailOffset, 512)]
        if differencing {
            layout.parentUUID = try r.slice(40, 16)
            let (locators, regions) = try parentLocators(r, file: file, headerOffset: headerOffset)
            layout.parentLocators = locators
            layout.metadata += regions
        }
        return layout
    }

    /// Largest parent locator Wisp reads (a path, so far more than any real one).
    static let maxLocatorLength: UInt32 = 64 << 10

    /// The parent's names, relative W2ru first, then absolute W2ku, then MacX, then the
    /// header's Unicode parent name; with where each locator's data lies. The "Mac" code
    /// (a Mac OS alias record) names no path Wisp can use and is skipped.
    static func parentLocators(_ r: HeaderFields, file: any BlockDevice, headerOffset: UInt64) throws
        -> ([BlockMappedHeader.ParentLocator], [(what: String, offset: UInt64, length: UInt64)]) {
        var found: [String: String] = [:]
        var regions: [(what: String, offset: UInt64, length: UInt64)] = []
        for i in 0..<8 {
            let at = 576 + 24 * i
            let code = String(decoding: try r.slice(at, 4), as: UTF8.self)
            let length = try r.be32(at + 8)
            let offset = try r.be64(at + 16)
            guard code != "\0\0\0\0", length > 0 else { continue }
            let where_ = headerOffset + UInt64(at)
            guard length <= maxLocatorLength else {
                throw WispError.corrupt(file.name, "VHD parent locator \(i) (\(code))", at: where_, "data length \(length) is more than \(maxLocatorLength) bytes")
            }
            let bytes = try file.readStructure("VHD parent locator \(i) (\(code)) data", at: offset, count: Int(length))
            regions.append(("parent locator \(i) data", offset, UInt64(length)))
            switch code {
            case "W2ru", "W2ku": found[code] = decodeUTF16(bytes, bigEndian: false)
            case "MacX": found[code] = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            default: break
            }
        }
        var locators: [BlockMappedHeader.ParentLocator] = []
        for code in ["W2ru", "W2ku", "MacX"] {
            if let p = found[code], !p.isEmpty { locators.append(.init(key: code, path: p)) }
        }
        let unicode = decodeUTF16(try r.slice(64, 512), bigEndian: true)
        if !unicode.isEmpty { locators.append(.init(key: "parent name", path: unicode)) }
        return (locators, regions)
    }

    /// The footer's and header's unique ids, as text (big-endian, the order VHD stores).
    static func uuidString(_ b: [UInt8]) -> String {
        guard b.count == 16 else { return "?" }
        let hex = b.map { String($0 >> 4, radix: 16) + String($0 & 15, radix: 16) }
        return [0..<4, 4..<6, 6..<8, 8..<10, 10..<16].map { hex[$0].joined() }.joined(separator: "-")
    }

    static func decodeUTF16(_ bytes: [UInt8], bigEndian: Bool) -> String {
        var units: [UInt16] = []
        var i = 0
        while i + 1 < bytes.count {
            let u = bigEndian ? UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]) : UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8
            if u == 0 { break }
            units.append(u)
            i += 2
        }
        return String(decoding: units, as: UTF16.self)
    }

    /// Opens the image; a differencing image reads through `parent` (the chain resolver
    /// found and checked it) and is refused without one.
    static func open(_ file: any BlockDevice, parent: (any BlockDevice)? = nil) throws -> BlockMappedImage {
        let layout = try parse(file)
        if layout.footer.diskType == .differencing, parent == nil {
            throw WispError.unsupported(file.name, "a differencing VHD image needs its parent (\(layout.parentLocators.first?.path ?? "unnamed")); open it through its backing chain")
        }
        return try BlockMappedImage(name: file.name, format: .vhd, subformat: layout.subformat, size: layout.footer.virtualSize,
                                    blockSize: layout.blockSize, blocks: layout.blocks, file: file,
                                    parent: layout.footer.diskType == .differencing ? parent : nil)
    }
}
