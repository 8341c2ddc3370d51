import Foundation
import WispCore
import WispTestSupport
@testable import DiskImage

/// Builds differencing VHD and VHDX images, which qemu-img cannot create ("Backing file not
/// supported for file format 'vpc'/'vhdx'"): qemu-img creates a dynamic image and qemu-io
/// writes the child's data into it, then the bytes are patched into a differencing image
/// following the format specifications (VHD: disk type 4, parent unique id, Unicode parent
/// name, parent locators, per-block sector bitmaps; MS-VHDX: HasParent, a parent locator
/// metadata item, partly present blocks with sector bitmap blocks). The judge is a qcow2
/// overlay on the same parent with the same qemu-io writes.
enum DifferencingFixture {
    /// Sector-aligned (offset, length, pattern) writes: a sector's bitmap bit is set exactly
    /// when a write covered it, so the patched image means what the qcow2 overlay means.
    typealias Write = (offset: UInt64, length: UInt64, pattern: UInt8)
    static let parentWrites: [Write] = [(0, 1 << 20, 0xAB), (3 << 20, 5 << 20, 0x11), (20 << 20, 300 << 10, 0x5A), (39 << 20, 1 << 20, 0x77)]
    static let childWrites: [Write] = [(512, 3072, 0xC1), (2 << 20, 1 << 20, 0xC2), (5 << 20 + 4096, 8192, 0xC3),
                                      (20 << 20 + 100 << 10, 2 << 20, 0xC4), (33 << 20, 512, 0xC5)]

    static func commands(_ writes: [Write]) -> [String] {
        writes.map { "write -P \($0.pattern) \($0.offset) \($0.length)" }
    }

    static func read(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
    static func write(_ path: String, _ bytes: [UInt8]) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    static func utf16(_ s: String, bigEndian: Bool) -> [UInt8] {
        s.utf16.flatMap { bigEndian ? [UInt8($0 >> 8), UInt8($0 & 0xFF)] : [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
    }

    /// The qcow2 judge: `parent` (format `parentFormat`) with `writes` on top.
    static func reference(parent: String, parentFormat: String, writes: [Write], at path: String) throws {
        try Qemu.img("create", "-q", "-f", "qcow2", "-b", parent, "-F", parentFormat, path)
        try Qemu.io(path, format: "qcow2", commands(writes))
    }

    // MARK: - VHD

    static func be32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 << 8 | UInt32(b[at + $1]) } }
    static func be64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 << 8 | UInt64(b[at + $1]) } }

    /// A dynamic VHD of `size` with `writes`, made differencing with `locators`
    /// (platform code, bytes) and `parentName`; its parent id is `parentID` (nil: the
    /// footer id of `parentFile`).
    static func vhdChild(at path: String, size: String = "40M", writes: [Write] = childWrites,
                         parentFile: String, parentName: String, locators: [(String, [UInt8])],
                         parentID: [UInt8]? = nil) throws {
        try Qemu.img("create", "-q", "-f", "vpc", "-o", "subformat=dynamic", path, size)
        try Qemu.io(path, format: "vpc", commands(writes))
        var b = try read(path)
        let footer = Array(b[(b.count - 512)...])
        b.removeLast(512)
        let id = try parentID ?? { let p = try read(parentFile); return Array(p[(p.count - 512 + 68)..<(p.count - 512 + 84)]) }()
        // Dynamic header at 512: parent id, Unicode name, locators; data appended at the end.
        let h = 512
        b.replaceSubrange((h + 40)..<(h + 56), with: id)
        let name = utf16(parentName, bigEndian: true)
        b.replaceSubrange((h + 64)..<(h + 64 + min(name.count, 512)), with: name.prefix(512))
        for (i, (code, data)) in locators.enumerated() {
            let offset = UInt64(b.count)
            let space = (data.count + 511) / 512 * 512
            b += data + [UInt8](repeating: 0, count: space - data.count)
            let at = h + 576 + 24 * i
            b.replaceSubrange(at..<(at + 4), with: Array(code.utf8))
            b.putBE(UInt64(space / 512), at: at + 4, width: 4)
            b.putBE(UInt64(data.count), at: at + 8, width: 4)
            b.putBE(offset, at: at + 16, width: 8)
        }
        b.putBE(0, at: h + 36, width: 4)
        b.putBE(UInt64(VhdFooter.checksum(Array(b[h..<(h + 1024)]), skipping: 36)), at: h + 36, width: 4)
        // Sector bitmaps: only the sectors the writes covered (most significant bit first).
        let bat = Int(be64(b, h + 16))
        let blockSize = UInt64(be32(b, h + 32))
        let entries = Int(be32(b, h + 28))
        for i in 0..<entries {
            let sector = be32(b, bat + 4 * i)
            guard sector != 0xFFFF_FFFF else { continue }
            var bitmap = [UInt8](repeating: 0, count: 512)
            let start = UInt64(i) * blockSize
            for w in writes {
                var s = max(w.offset, start)
                while s < min(w.offset + w.length, start + blockSize) {
                    let bit = Int((s - start) / 512)
                    bitmap[bit / 8] |= 0x80 >> UInt8(bit % 8)
                    s += 512
                }
            }
            b.replaceSubrange(Int(sector) * 512..<(Int(sector) * 512 + 512), with: bitmap)
        }
        // Both footer copies: disk type 4 (differencing), checksum again.
        var f = footer
        f.putBE(4, at: 60, width: 4)
        f.putBE(0, at: 64, width: 4)
        f.putBE(UInt64(VhdFooter.checksum(f, skipping: 64)), at: 64, width: 4)
        b.replaceSubrange(0..<512, with: f)
        try write(path, b + f)
    }

    // MARK: - VHDX

    static func le16(_ b: [UInt8], _ at: Int) -> Int { Int(b[at]) | Int(b[at + 1]) << 8 }
    static func le32(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<4).reversed().reduce(0) { $0 << 8 | UInt64(b[at + $1]) } }
    static func le64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reversed().reduce(0) { $0 << 8 | UInt64(b[at + $1]) } }

    /// The current header's DataWriteGuid (the one with the higher sequence number).
    static func vhdxDataWriteGUID(_ path: String) throws -> [UInt8] {
        let b = try read(path)
        let a = 64 << 10, c = 128 << 10
        let current = le64(b, a + 8) >= le64(b, c + 8) ? a : c
        return Array(b[(current + 32)..<(current + 48)])
    }

    /// A dynamic VHDX (1 MiB blocks) with `writes`, made differencing: HasParent, a parent
    /// locator item with `entries` (key, value), blocks the writes cover only in part set
    /// PAYLOAD_BLOCK_PARTIALLY_PRESENT with a sector bitmap block.
    static func vhdxChild(at path: String, writes: [Write] = childWrites, entries: [(String, String)]) throws {
        try Qemu.img("create", "-q", "-f", "vhdx", "-o", "subformat=dynamic,block_size=1M", path, "40M")
        try Qemu.io(path, format: "vhdx", commands(writes))
        var b = try read(path)
        // Region table at 192 KiB: find the BAT and metadata regions.
        let rt = 192 << 10
        var batOffset = 0, metaOffset = 0
        for i in 0..<Int(le32(b, rt + 8)) {
            let at = rt + 16 + 32 * i
            let guid = Array(b[at..<(at + 16)])
            if guid == VhdxImage.batGUID { batOffset = Int(le64(b, at + 16)) }
            if guid == VhdxImage.metadataGUID { metaOffset = Int(le64(b, at + 16)) }
        }
        let count = le16(b, metaOffset + 10)
        var end = 64 << 10
        for i in 0..<count {
            let at = metaOffset + 32 + 32 * i
            let guid = Array(b[at..<(at + 16)])
            let offset = Int(le32(b, at + 16)), length = Int(le32(b, at + 20))
            end = max(end, offset + length)
            if guid == VhdxImage.fileParametersGUID { b[metaOffset + offset + 4] |= 2 }  // HasParent
        }
        // The locator: type GUID, reserved, count, 12-byte entries, then UTF-16LE strings.
        var item = VhdxImage.vhdxLocatorTypeGUID + [0, 0] + [UInt8(entries.count), 0]
        var strings: [UInt8] = []
        let stringsStart = 20 + 12 * entries.count
        var table: [UInt8] = []
        for (k, v) in entries {
            let key = utf16(k, bigEndian: false), value = utf16(v, bigEndian: false)
            var e = [UInt8](repeating: 0, count: 12)
            e.putLE(UInt64(stringsStart + strings.count), at: 0, width: 4)
            e.putLE(UInt64(stringsStart + strings.count + key.count), at: 4, width: 4)
            e.putLE(UInt64(key.count), at: 8, width: 2)
            e.putLE(UInt64(value.count), at: 10, width: 2)
            table += e
            strings += key + value
        }
        item += table + strings
        let itemOffset = (end + 7) / 8 * 8
        b.replaceSubrange((metaOffset + itemOffset)..<(metaOffset + itemOffset + item.count), with: item)
        var entry = VhdxImage.parentLocatorGUID + [UInt8](repeating: 0, count: 16)
        entry.putLE(UInt64(itemOffset), at: 16, width: 4)
        entry.putLE(UInt64(item.count), at: 20, width: 4)
        entry.putLE(6, at: 24, width: 4)  // IsVirtualDisk | IsRequired
        let slot = metaOffset + 32 + 32 * count
        b.replaceSubrange(slot..<(slot + 32), with: entry)
        b.putLE(UInt64(count + 1), at: metaOffset + 10, width: 2)
        // qemu-img marks a dynamic image's unwritten blocks ZERO (state 2), which in a
        // differencing image reads as zeros; blocks the child never wrote come from the
        // parent only as NOT_PRESENT (state 0).
        for block in 0..<40 where le64(b, batOffset + 8 * block) & 7 == 2 { b.putLE(0, at: batOffset + 8 * block, width: 8) }
        // Partly written blocks: state 7 and bits in the chunk's sector bitmap block.
        let blockSize: UInt64 = 1 << 20
        let chunkRatio = 4096  // 2^23 sectors of 512 bytes per 1 MiB block
        var covered: [Int: Set<Int>] = [:]
        for w in writes {
            var s = w.offset
            while s < w.offset + w.length { covered[Int(s / blockSize), default: []].insert(Int(s % blockSize / 512)); s += 512 }
        }
        var bitmap = [UInt8](repeating: 0, count: 1 << 20)
        var partial = false
        for (block, sectors) in covered where sectors.count < Int(blockSize / 512) {
            let at = batOffset + 8 * block
            b.putLE((le64(b, at) & ~7) | 7, at: at, width: 8)
            for s in sectors {
                let bit = block * Int(blockSize / 512) + s
                bitmap[bit / 8] |= 1 << UInt8(bit % 8)
            }
            partial = true
        }
        if partial {
            let sbOffset = (b.count + (1 << 20) - 1) / (1 << 20) * (1 << 20)
            b += [UInt8](repeating: 0, count: sbOffset - b.count) + bitmap
            b.putLE(UInt64(sbOffset) | 6, at: batOffset + 8 * chunkRatio, width: 8)
        }
        try write(path, b)
    }

    static func guidText(_ b: [UInt8]) -> String { "{" + VhdxImage.guidString(b).uppercased() + "}" }
}
