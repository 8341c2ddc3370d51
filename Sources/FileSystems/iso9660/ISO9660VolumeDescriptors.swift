import WispCore

/// The volume descriptor set from sector 16 to its terminator: the primary descriptor, a
/// Joliet supplementary descriptor when there is one, and the El Torito boot record's
/// pointer to the boot catalog.
struct ISO9660VolumeDescriptors: Sendable {
    struct Volume: Sendable {
        var offset: UInt64
        var volumeID: String
        var systemID: String
        var volumeSpaceSectors: UInt32
        var root: ISO9660Record
        /// The little-endian path table: every directory with its parent's number.
        var pathTableBytes: UInt32
        var pathTableSector: UInt32
        /// The modification (else creation) date as blkid shows it: the UUID Linux gives an ISO.
        var dateUUID: String?
    }

    var primary: Volume
    var joliet: Volume?
    /// The sector of the El Torito boot catalog, when a boot record names one.
    var bootCatalogSector: UInt32?

    static let firstSector: UInt64 = 16
    /// A real set holds a handful of descriptors; a hostile one could claim thousands.
    static let maxDescriptors = 64

    static func read(_ device: any BlockDevice) throws -> ISO9660VolumeDescriptors {
        let sector = UInt64(ISO9660Reader.sectorSize)
        var primary: Volume?, joliet: Volume?, catalog: UInt32?
        var terminated = false
        for index in 0..<UInt64(maxDescriptors) {
            let offset = (firstSector + index) * sector
            guard device.size >= offset + sector else { break }
            let bytes = try device.read(at: offset, count: Int(sector))
            guard Array(bytes[1..<6]) == Array("CD001".utf8) else {
                throw WispError.corrupt(device.name, "ISO 9660 volume descriptor", at: offset,
                                        "no \"CD001\" standard identifier: the descriptor set ends without a terminator")
            }
            switch bytes[0] {
            case 0:
                if Array(bytes[7..<30]) == Array("EL TORITO SPECIFICATION".utf8) {
                    catalog = UInt32(bytes[0x47]) | UInt32(bytes[0x48]) << 8 | UInt32(bytes[0x49]) << 16 | UInt32(bytes[0x4A]) << 24
                }
            case 1:
                if primary == nil { primary = try volume(bytes, at: offset, joliet: false, source: device.name) }
            case 2:
                // Joliet: escape sequence %/@, %/C or %/E (UCS-2 levels 1-3) in the first 3 bytes of 88..<120.
                let escape = Array(bytes[88..<91])
                if joliet == nil, escape[0] == 0x25, escape[1] == 0x2F, [0x40, 0x43, 0x45].contains(escape[2]) {
                    joliet = try volume(bytes, at: offset, joliet: true, source: device.name)
                }
            case 255:
                terminated = true
            default:
                break
            }
            if terminated { break }
        }
        guard let primary else {
            throw WispError.corrupt(device.name, "ISO 9660 volume descriptor set", at: firstSector * sector,
                                    "no primary volume descriptor before the terminator")
        }
        return ISO9660VolumeDescriptors(primary: primary, joliet: joliet, bootCatalogSector: catalog)
    }

    static func volume(_ bytes: [UInt8], at offset: UInt64, joliet: Bool, source: String) throws -> Volume {
        let reader = ByteReader(bytes, source: source, structure: joliet ? "Joliet volume descriptor" : "ISO 9660 primary volume descriptor",
                                baseOffset: offset)
        let blockSize = try reader.u16le(128)
        guard Int(blockSize) == ISO9660Reader.sectorSize else {
            throw WispError.unsupported(source, "ISO 9660 volume descriptor at offset \(offset): logical block size \(blockSize) (only 2048 is supported)")
        }
        // The root record is embedded at 156, 34 bytes long.
        var rootSector = [UInt8](repeating: 0, count: ISO9660Reader.sectorSize)
        rootSector.replaceSubrange(0..<34, with: try reader.slice(156, 34))
        let root = try ISO9660Record.parse(rootSector, at: 0, sectorOffset: offset + 156, source: source)
        guard root.isDirectory else {
            throw reader.error(at: 156, "the root directory record is not flagged as a directory")
        }
        func text(_ range: Range<Int>) -> String {
            let raw = Array(bytes[range])
            let decoded = joliet ? ISO9660Names.ucs2(raw) : String(decoding: raw, as: UTF8.self)
            return ISO9660Names.trimmed(decoded)
        }
        let uuid = ISO9660Date.blkidUUID(bytes[830..<847]) ?? ISO9660Date.blkidUUID(bytes[813..<830])
        return Volume(offset: offset, volumeID: text(40..<72), systemID: text(8..<40),
                      volumeSpaceSectors: try reader.u32le(80), root: root,
                      pathTableBytes: try reader.u32le(132), pathTableSector: try reader.u32le(140), dateUUID: uuid)
    }
}
