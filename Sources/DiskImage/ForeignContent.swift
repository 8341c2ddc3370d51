import WispCore

/// Files the format probe must not take for a raw disk: disk formats Wisp does not read
/// (refused with `.unsupported`, naming the format) and content that is no disk image at
/// all (text, HTML error pages, archives, compressed files, files shorter than a sector;
/// refused with `.invalidArgument`). Booting such a file as a raw disk, or copying it into
/// a qcow2, only fails later and less clearly.
///
/// Raw stays the fallback for anything else binary: a real raw disk starts with an MBR or
/// a protective MBR (boot code, NUL bytes), a bare filesystem (ext4's and ISO 9660's
/// zeroed first sectors, FAT's jump instruction, "XFSB" followed by binary fields), or
/// zeros. None of those is valid NUL-free UTF-8 text and none carries the archive magics
/// below with their checksums or reserved bits right, so only content identified
/// positively is refused.
enum ForeignContent {
    /// How much of the file's start the text test looks at.
    static let sniffLength = 64 << 10

    /// A disk format Wisp recognises but does not read, or nil. `head`: the file's first
    /// bytes (up to `sniffLength`); `tail`: its last 512 bytes when it has that many.
    static func unsupportedFormat(head: [UInt8], tail: [UInt8]?) -> String? {
        func at(_ offset: Int, _ magic: [UInt8]) -> Bool {
            head.count >= offset + magic.count && Array(head[offset..<(offset + magic.count)]) == magic
        }
        func at(_ offset: Int, _ text: String) -> Bool { at(offset, Array(text.utf8)) }
        // qemu's parallels.c: either signature at offset 0.
        if at(0, "WithoutFreeSpace") || at(0, "WithouFreSpacExt") { return "a Parallels disk image" }
        if at(0, "Bochs Virtual HD Image") { return "a Bochs disk image" }
        if at(0, [0x51, 0x45, 0x44, 0x00]) { return "a QED disk image" }
        // qcow (version 1) shares qcow2's magic; the big-endian version follows it.
        if at(0, [0x51, 0x46, 0x49, 0xFB, 0, 0, 0, 1]) { return "a qcow (version 1) disk image" }
        if at(0, [0x4C, 0x55, 0x4B, 0x53, 0xBA, 0xBE]) { return "a LUKS-encrypted volume" }
        // cloop: a shell script header that mounts the rest with the cloop module.
        if at(0, "#!/bin/sh"), String(decoding: head.prefix(128), as: UTF8.self).contains("cloop") {
            return "a cloop compressed image"
        }
        // Android's sparse image (simg): magic 0xED26FF3A little-endian, major version 1.
        if at(0, [0x3A, 0xFF, 0x26, 0xED, 0x01, 0x00]) { return "an Android sparse image" }
        // DMG (UDIF): the "koly" trailer, version 4, 512 bytes long, in the last sector.
        if let tail, tail.count == 512, Array(tail[0..<4]) == Array("koly".utf8),
           Array(tail[4..<12]) == [0, 0, 0, 4, 0, 0, 2, 0] {
            return "an Apple disk image (DMG)"
        }
        return nil
    }

    /// How to turn an unsupported format into one Wisp reads.
    static func advice(for format: String, name: String) -> String {
        switch format {
        case "a LUKS-encrypted volume": return "open it with cryptsetup and use the mapped device"
        case "an Android sparse image": return "expand it with simg2img first"
        default: return "convert it first (qemu-img convert -O qcow2 \(name) out.qcow2)"
        }
    }

    /// Why the file is not a disk image at all, as a sentence, or nil when it may be one.
    static func notADiskImage(head: [UInt8], size: UInt64, name: String) -> String? {
        func at(_ offset: Int, _ magic: [UInt8]) -> Bool {
            head.count >= offset + magic.count && Array(head[offset..<(offset + magic.count)]) == magic
        }
        // gzip: ID1 ID2, method deflate, reserved flag bits clear.
        if at(0, [0x1F, 0x8B, 0x08]), head.count > 3, head[3] & 0xE0 == 0 {
            return "\(name) is a gzip-compressed file, not a disk image; decompress it first (gunzip -k \(name))"
        }
        if at(0, [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) {
            return "\(name) is an xz-compressed file, not a disk image; decompress it first (xz -dk \(name))"
        }
        // zstd frame: magic, then a frame header descriptor whose reserved bit 3 is clear.
        if at(0, [0x28, 0xB5, 0x2F, 0xFD]), head.count > 4, head[4] & 0x08 == 0 {
            return "\(name) is a zstd-compressed file, not a disk image; decompress it first (zstd -d \(name))"
        }
        // bzip2: "BZh", a block size digit, then a block or end-of-stream magic (pi, sqrt(pi)).
        if at(0, Array("BZh".utf8)), head.count >= 10, (0x31...0x39).contains(head[3]),
           at(4, [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]) || at(4, [0x17, 0x72, 0x45, 0x38, 0x50, 0x90]) {
            return "\(name) is a bzip2-compressed file, not a disk image; decompress it first (bunzip2 -k \(name))"
        }
        if at(0, [0x50, 0x4B, 0x03, 0x04]) || at(0, [0x50, 0x4B, 0x05, 0x06]) {
            return "\(name) is a zip archive, not a disk image; extract the disk image from it first (unzip \(name))"
        }
        if at(0, [0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C]) {
            return "\(name) is a 7-Zip archive, not a disk image; extract the disk image from it first (7z x \(name))"
        }
        // tar: "ustar" at 257 and a header checksum that holds (an OVA is a tar too: the
        // caller lets those through to the OVA reader).
        if head.count >= 512, at(257, Array("ustar".utf8)), TarIndex.checksumMatches(Array(head[0..<512])) {
            return "\(name) is a tar archive, not a disk image; extract the disk image from it first (tar -xf \(name))"
        }
        if let kind = textKind(head) {
            return "\(name) is \(kind), not a disk image"
        }
        if size < 512 {
            return "\(name) is \(size) bytes, shorter than one 512-byte sector, so it is not a disk image"
        }
        return nil
    }

    /// "a text file", "an HTML page (...)", ... when `head` is NUL-free UTF-8 text (a
    /// multi-byte character cut by the end of the sample is allowed); nil otherwise.
    static func textKind(_ head: [UInt8]) -> String? {
        guard !head.isEmpty else { return nil }
        // Control characters other than tab, newlines, form feed, backspace and escape
        // mean binary; so does any NUL.
        for b in head where b < 0x20 && ![0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1B].contains(b) { return nil }
        guard validUTF8(head) else { return nil }
        // Words and lines: a run of one printable byte (a test pattern written to a raw
        // disk with qemu-io -P 0x42) is not text.
        var seen = Set<UInt8>()
        for b in head where seen.count < 4 { seen.insert(b) }
        guard seen.count >= 4, head.contains(0x20) || head.contains(0x0A) else { return nil }
        let start = String(decoding: head.prefix(1024), as: UTF8.self).drop { $0 == "\u{FEFF}" || $0.isWhitespace }.lowercased()
        if start.hasPrefix("<!doctype html") || start.hasPrefix("<html") || start.contains("<html") {
            return "an HTML page (perhaps an error page saved in place of the download)"
        }
        if start.hasPrefix("<?xml"), start.contains("envelope"), start.contains("ovf") {
            return "an OVF descriptor (give the disk file it names, or the .ova)"
        }
        if start.hasPrefix("<?xml") { return "an XML file" }
        if start.hasPrefix("{") || start.hasPrefix("[") { return "a text file (JSON)" }
        return "a text file"
    }

    /// Strict UTF-8 (no overlongs, surrogates or values past U+10FFFF), except that a
    /// sequence cut off by the end of the buffer counts as valid.
    static func validUTF8(_ bytes: [UInt8]) -> Bool {
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            let length: Int
            var low: UInt8 = 0x80, high: UInt8 = 0xBF
            switch b {
            case 0x00...0x7F: i += 1; continue
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE, 0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return false
            }
            for k in 1..<length {
                guard i + k < bytes.count else { return true }
                let c = bytes[i + k]
                guard c >= (k == 1 ? low : 0x80), c <= (k == 1 ? high : 0xBF) else { return false }
            }
            i += length
        }
        return true
    }
}
