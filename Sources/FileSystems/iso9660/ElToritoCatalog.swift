import WispCore

/// The El Torito boot catalog (El Torito 1.0): a validation entry, the initial/default
/// entry, then section headers with their entries (one section per platform: BIOS x86,
/// UEFI, ...). What a firmware boots from a CD; Wisp lists it and finds the EFI system
/// partition image that UEFI firmware would open.
public struct ElToritoCatalog: Sendable, Codable, Equatable {
    public enum Platform: String, Sendable, Codable {
        case bios = "BIOS", uefi = "UEFI", powerPC = "PowerPC", mac = "Mac", other
        init(_ id: UInt8) {
            switch id {
            case 0x00: self = .bios
            case 0xEF: self = .uefi
            case 0x01: self = .powerPC
            case 0x02: self = .mac
            default: self = .other
            }
        }
    }

    public struct Entry: Sendable, Codable, Equatable {
        public var platform: Platform
        public var bootable: Bool
        /// "no emulation", "1.2M floppy", "1.44M floppy", "2.88M floppy", "hard disk".
        public var media: String
        /// Where the image starts, in 2048-byte sectors from the start of the ISO.
        public var loadSector: UInt32
        /// How many 512-byte sectors the firmware loads (0 and 1 mean "as recorded by the tool":
        /// for UEFI images the FAT filesystem's own size is the real one).
        public var sectorCount: UInt16
        public var loadSegment: UInt16
        public var imageOffset: UInt64 { UInt64(loadSector) * UInt64(ISO9660Reader.sectorSize) }
    }

    /// The sector the catalog starts at.
    public var sector: UInt32
    /// The validation entry's manufacturer/developer string.
    public var idString: String
    public var entries: [Entry]

    /// At most this many 32-byte entries are read (four sectors); real catalogs use a few.
    static let maxEntries = 256

    public static func read(_ device: any BlockDevice, sector: UInt32) throws -> ElToritoCatalog {
        let offset = UInt64(sector) * UInt64(ISO9660Reader.sectorSize)
        let available = device.size > offset ? device.size - offset : 0
        let length = Int(min(UInt64(maxEntries * 32), available - available % 32))
        guard length >= 64 else {
            throw WispError.corrupt(device.name, "El Torito boot catalog", at: offset, "lies past the end of the image")
        }
        let bytes = try device.read(at: offset, count: length)
        let reader = ByteReader(bytes, source: device.name, structure: "El Torito boot catalog", baseOffset: offset)
        // Validation entry: header 1, key 55 AA, and the 16-bit words summing to zero.
        guard bytes[0] == 0x01, bytes[30] == 0x55, bytes[31] == 0xAA else {
            throw reader.error(at: 0, "no validation entry (header 01, key 55 AA)")
        }
        var sum: UInt16 = 0
        for i in stride(from: 0, to: 32, by: 2) { sum &+= UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8 }
        guard sum == 0 else { throw reader.error(at: 28, "validation entry checksum does not sum to zero") }
        let idString = String(decoding: bytes[4..<28].prefix { $0 != 0 }, as: UTF8.self)
            .trimmingWhitespaceAndNULs()
        var entries = [try entry(reader, at: 32, platform: Platform(bytes[1]))]
        var position = 64
        var finalSeen = false
        while !finalSeen, position + 32 <= bytes.count {
            let header = bytes[position]
            guard header == 0x90 || header == 0x91 else { break }  // no more sections
            finalSeen = header == 0x91
            let platform = Platform(bytes[position + 1])
            let count = Int(try reader.u16le(position + 2))
            position += 32
            var taken = 0
            while taken < count, position + 32 <= bytes.count {
                if bytes[position] == 0x44 { position += 32; continue }  // extension of the previous entry
                entries.append(try entry(reader, at: position, platform: platform))
                taken += 1
                position += 32
            }
            guard taken == count else {
                throw reader.error(at: position, "a section announces \(count) entries but the catalog ends after \(taken)")
            }
        }
        return ElToritoCatalog(sector: sector, idString: idString, entries: entries)
    }

    static func entry(_ reader: ByteReader, at position: Int, platform: Platform) throws -> Entry {
        let indicator = try reader.u8(position)
        guard indicator == 0x88 || indicator == 0x00 else {
            throw reader.error(at: position, "boot indicator 0x\(String(indicator, radix: 16)) is neither 88 (bootable) nor 00")
        }
        let media: String
        switch try reader.u8(position + 1) & 0x0F {
        case 0: media = "no emulation"
        case 1: media = "1.2M floppy"
        case 2: media = "1.44M floppy"
        case 3: media = "2.88M floppy"
        case 4: media = "hard disk"
        default: media = "unknown"
        }
        return Entry(platform: platform, bootable: indicator == 0x88, media: media,
                     loadSector: try reader.u32le(position + 8), sectorCount: try reader.u16le(position + 6),
                     loadSegment: try reader.u16le(position + 2))
    }

    /// The EFI system partition image of the first UEFI entry, as a device: its size is the
    /// FAT filesystem's own (the catalog's count is often 0 or 1 when the image is large).
    public func efiImage(on device: any BlockDevice) throws -> (any BlockDevice)? {
        guard let entry = entries.first(where: { $0.platform == .uefi }) else { return nil }
        let start = entry.imageOffset
        guard start < device.size else {
            throw WispError.corrupt(device.name, "El Torito UEFI entry", at: UInt64(sector) * UInt64(ISO9660Reader.sectorSize),
                                    "its image at offset \(start) lies past the end of the image")
        }
        let rest = device.size - start
        var size = UInt64(entry.sectorCount) * 512
        if rest >= 512, let boot = try? device.read(at: start, count: 512) {
            // The FAT boot sector's total sectors (16-bit at 19, else 32-bit at 32).
            let small = UInt64(boot[19]) | UInt64(boot[20]) << 8
            let large = UInt64(boot[32]) | UInt64(boot[33]) << 8 | UInt64(boot[34]) << 16 | UInt64(boot[35]) << 24
            let bytesPerSector = UInt64(boot[11]) | UInt64(boot[12]) << 8
            let fatSize = (small != 0 ? small : large) * bytesPerSector
            if boot[510] == 0x55, boot[511] == 0xAA, fatSize > size { size = fatSize }
        }
        return try SliceBlockDevice(base: device, start: start, size: min(max(size, 512), rest), name: "\(device.name) El Torito EFI image")
    }
}

extension String {
    fileprivate func trimmingWhitespaceAndNULs() -> String {
        var s = Substring(self)
        while let c = s.last, c == " " || c == "\u{0}" { s = s.dropLast() }
        while let c = s.first, c == " " { s = s.dropFirst() }
        return String(s)
    }
}
