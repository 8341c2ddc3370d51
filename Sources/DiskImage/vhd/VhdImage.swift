import Foundation
import WispCore

/// Reads VHD images (qemu's "vpc"): fixed (data then footer) and dynamic (footer copy,
/// dynamic header, BAT of 512-byte sector offsets, blocks of sector bitmap + data).
/// Differencing images are recognised and their parent named, but not read yet.
enum VhdImage {
    /// What the headers say, checked against the file size.
    struct Layout: Sendable {
        var footer: VhdFooter
        var blockSize: UInt64
        var blocks: [MappedBlock]
        var subformat: String { footer.diskType == .fixed ? "fixed" : footer.diskType == .dynamic ? "dynamic" : "differencing" }
        /// For differencing images: the parent's name as its locators record it.
        var parentName: String?
    }

    static let unallocatedEntry: UInt32 = 0xFFFF_FFFF
    /// Block sizes beyond this are refused (the specification's default is 2 MiB).
    static let maxBlockSize: UInt64 = 256 << 20

    static func parse(_ file: any BlockDevice) throws -> Layout {
        let name = file.name
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
            return Layout(footer: footer, blockSize: blockSize, blocks: blocks)
        }
        let headerOffset = footer.dataOffset
        let header = try file.readStructure("VHD dynamic header", at: headerOffset, count: 1024)
        let r = HeaderFields(bytes: header, name: name, structure: "VHD dynamic header", base: headerOffset)
        guard try r.slice(0, 8) == Array("cxsparse".utf8) else {
            throw WispError.corrupt(name, "VHD dynamic header", at: headerOffset, "no \"cxsparse\" cookie")
        }
        let stored = try r.be32(36)
        let computed = VhdFooter.checksum(header, skipping: 36)
        guard stored == computed else {
            throw WispError.corrupt(name, "VHD dynamic header", at: headerOffset, "checksum \(hex(stored)) does not match (\(hex(computed)))")
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
                throw WispError.corrupt(name, "VHD BAT entry \(i)", at: tableOffset + UInt64(4 * i), "sector \(e) lies beyond the end of the file (\(file.size) bytes)")
            }
            blocks.append(.data(dataStart))
        }
        var layout = Layout(footer: footer, blockSize: blockSize, blocks: blocks)
        if footer.diskType == .differencing {
            layout.parentName = parentName(header, file: file, headerOffset: headerOffset) ?? "(unnamed)"
        }
        return layout
    }

    /// The parent's path from the locators (relative W2ru first, then absolute W2ku,
    /// then MacX), else the Unicode parent name field.
    static func parentName(_ header: [UInt8], file: any BlockDevice, headerOffset: UInt64) -> String? {
        var found: [String: String] = [:]
        for i in 0..<8 {
            let at = 576 + 24 * i
            let code = String(decoding: header[at..<(at + 4)], as: UTF8.self)
            let r = HeaderFields(bytes: header, name: file.name, structure: "VHD parent locator", base: headerOffset)
            guard let length = try? r.be32(at + 8), let offset = try? r.be64(at + 16),
                  length > 0, length <= 4096,
                  let bytes = try? file.readStructure("VHD parent locator \(i)", at: offset, count: Int(length)) else { continue }
            switch code {
            case "W2ru", "W2ku": found[code] = decodeUTF16(bytes, bigEndian: false)
            case "MacX": found[code] = String(decoding: bytes, as: UTF8.self)
            default: break
            }
        }
        if let p = found["W2ru"] ?? found["W2ku"] {
            var s = p.replacingOccurrences(of: "\\", with: "/")
            if s.hasPrefix("./") { s.removeFirst(2) }
            return s
        }
        if let mac = found["MacX"] { return mac.hasPrefix("file://") ? String(mac.dropFirst(7)) : mac }
        let unicode = decodeUTF16(Array(header[64..<576]), bigEndian: true)
        return unicode.isEmpty ? nil : unicode
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

    static func open(_ file: any BlockDevice) throws -> BlockMappedImage {
        let layout = try parse(file)
        if let parent = layout.parentName {
            throw WispError.unsupported(file.name, "differencing VHD images (parent \"\(parent)\") are not supported yet; convert the chain with qemu-img convert first")
        }
        return try BlockMappedImage(name: file.name, format: .vhd, subformat: layout.subformat, size: layout.footer.virtualSize,
                                    blockSize: layout.blockSize, blocks: layout.blocks, file: file)
    }
}
