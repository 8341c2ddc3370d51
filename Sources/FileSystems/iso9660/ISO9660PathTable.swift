import WispCore

/// The path table (ECMA-119 9.4): every directory once, numbered in level order, each with
/// its parent's number. It is the reader's record of which directory a subdirectory
/// belongs to, because ".." records cannot be trusted for that (libisofs writes Joliet
/// ".." records that point at the directory itself).
enum ISO9660PathTable {
    /// A path table larger than this is refused (it would list over a million directories).
    static let maxBytes: UInt32 = 16 << 20

    /// Directory extent sector → parent's, or nil when the table is missing or unsound: a
    /// parent numbered after its child, a number out of range, a directory listed twice.
    /// Those rules make the map a tree by construction (parents always come first).
    static func parents(of volume: ISO9660VolumeDescriptors.Volume, on device: any BlockDevice) -> [UInt32: UInt32]? {
        let size = volume.pathTableBytes
        guard size >= 10, size <= maxBytes else { return nil }
        let offset = UInt64(volume.pathTableSector) * UInt64(ISO9660Reader.sectorSize)
        guard (try? device.checkRange(offset: offset, count: UInt64(size), what: "path table")) != nil,
              let bytes = try? device.read(at: offset, count: Int(size)) else { return nil }
        var sectors: [UInt32] = []  // by directory number - 1
        var parents: [UInt32: UInt32] = [:]
        var position = 0
        while position + 8 <= bytes.count {
            let nameLength = Int(bytes[position])
            guard nameLength > 0 else { break }  // padding after the last record
            let sector = UInt32(bytes[position + 2]) | UInt32(bytes[position + 3]) << 8
                | UInt32(bytes[position + 4]) << 16 | UInt32(bytes[position + 5]) << 24
            let parentNumber = Int(UInt16(bytes[position + 6]) | UInt16(bytes[position + 7]) << 8)
            let number = sectors.count + 1
            // The root is number 1 and its own parent; every other parent comes earlier.
            guard parentNumber >= 1, parentNumber < number || (number == 1 && parentNumber == 1) else { return nil }
            let parent = sectors.isEmpty ? sector : sectors[parentNumber - 1]
            guard parents.updateValue(parent, forKey: sector) == nil else { return nil }
            sectors.append(sector)
            position += 8 + nameLength + (nameLength % 2)
        }
        guard sectors.first == volume.root.extentLBA else { return nil }
        return parents
    }
}
