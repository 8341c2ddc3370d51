import WispCore

/// The BIOS parameter block of a FAT12/16/32 volume and the geometry derived from it.
/// Every field is validated before use: a hostile boot sector produces an error naming
/// the field, never an out-of-range read or an outsized allocation.
struct FATBootSector: Sendable {
    enum Variant: Int, Sendable { case fat12 = 12, fat16 = 16, fat32 = 32 }

    var variant: Variant
    var bytesPerSector: UInt64
    var sectorsPerCluster: UInt64
    var clusterSize: UInt64
    /// Byte offset of the FAT in use (the first, unless FAT32 mirroring is off).
    var fatOffset: UInt64
    var fatBytes: UInt64
    /// FAT12/16 fixed root directory region; zero length on FAT32.
    var rootDirOffset: UInt64
    var rootDirBytes: UInt64
    var dataOffset: UInt64
    /// Usable clusters, numbered 2 ..< clusterCount + 2.
    var clusterCount: UInt32
    var rootCluster: UInt32
    var volumeID: UInt32?
    var label: String?

    var firstInvalidCluster: UInt32 { clusterCount &+ 2 }

    static func parse(_ device: any BlockDevice) throws -> FATBootSector {
        guard device.size >= 512 else {
            throw WispError.corrupt(device.name, "FAT boot sector", at: 0, "the device is only \(device.size) bytes")
        }
        let r = ByteReader(try device.read(at: 0, count: 512), source: device.name, structure: "FAT boot sector")
        let bytesPerSector = UInt64(try r.u16le(11))
        guard [512, 1024, 2048, 4096].contains(bytesPerSector) else {
            throw r.error(at: 11, "bytes per sector is \(bytesPerSector), expected 512, 1024, 2048 or 4096")
        }
        let sectorsPerCluster = UInt64(try r.u8(13))
        guard sectorsPerCluster != 0, sectorsPerCluster & (sectorsPerCluster - 1) == 0 else {
            throw r.error(at: 13, "sectors per cluster is \(sectorsPerCluster), expected a power of two")
        }
        let reserved = UInt64(try r.u16le(14))
        guard reserved >= 1 else { throw r.error(at: 14, "no reserved sectors (the boot sector itself is one)") }
        let fatCount = UInt64(try r.u8(16))
        guard (1...4).contains(fatCount) else { throw r.error(at: 16, "\(fatCount) FATs, expected 1 to 4") }
        let rootEntries = UInt64(try r.u16le(17))
        var totalSectors = UInt64(try r.u16le(19))
        if totalSectors == 0 { totalSectors = UInt64(try r.u32le(32)) }
        guard totalSectors != 0 else { throw r.error(at: 19, "total sector count is zero") }
        let fat16Size = UInt64(try r.u16le(22))
        let isFAT32 = fat16Size == 0
        let sectorsPerFAT = isFAT32 ? UInt64(try r.u32le(36)) : fat16Size
        guard sectorsPerFAT != 0 else { throw r.error(at: 36, "the FAT is zero sectors long") }
        if isFAT32, rootEntries != 0 {
            throw r.error(at: 17, "FAT32 volume declares \(rootEntries) fixed root entries, expected 0")
        }
        if !isFAT32, rootEntries == 0 {
            throw r.error(at: 17, "FAT12/16 volume has no room for a root directory")
        }
        // All of these are below 2^32 sectors of at most 4096 bytes: no overflow in UInt64.
        let rootDirSectors = (rootEntries * 32 + bytesPerSector - 1) / bytesPerSector
        let firstDataSector = reserved + fatCount * sectorsPerFAT + rootDirSectors
        guard firstDataSector < totalSectors else {
            throw r.error(at: 14, "the reserved sectors, FATs and root directory (\(firstDataSector) sectors) fill the whole \(totalSectors)-sector volume")
        }
        var clusters = (totalSectors - firstDataSector) / sectorsPerCluster
        // Type by the rule the Linux driver uses: FAT32 iff the 16-bit FAT size is zero,
        // otherwise by cluster count.
        let variant: Variant = isFAT32 ? .fat32 : (clusters <= 4084 ? .fat12 : .fat16)
        let fatBytes = sectorsPerFAT * bytesPerSector
        // A FAT too small for the clusters limits them, as in Linux.
        let entriesInFAT = fatBytes * 8 / UInt64(variant.rawValue)
        clusters = min(clusters, entriesInFAT >= 2 ? entriesInFAT - 2 : 0, 0x0FFF_FFF5)
        guard clusters >= 1 else { throw r.error(at: 22, "the FAT has room for no clusters") }

        var activeFAT: UInt64 = 0
        var rootCluster: UInt32 = 0
        var idOffset = 39
        var signatureOffset = 38
        if isFAT32 {
            let flags = try r.u16le(40)
            if flags & 0x80 != 0 {
                activeFAT = UInt64(flags & 0xF)
                guard activeFAT < fatCount else {
                    throw r.error(at: 40, "active FAT \(activeFAT) does not exist (\(fatCount) FATs)")
                }
            }
            rootCluster = try r.u32le(44) & 0x0FFF_FFFF
            guard rootCluster >= 2, UInt64(rootCluster) < clusters + 2 else {
                throw r.error(at: 44, "root directory cluster \(rootCluster) is outside clusters 2-\(clusters + 1)")
            }
            idOffset = 67
            signatureOffset = 66
        }
        var volumeID: UInt32?
        var label: String?
        let signature = try r.u8(signatureOffset)
        if signature == 0x29 || signature == 0x28 {
            volumeID = try r.u32le(idOffset)
            if signature == 0x29 {
                let text = FATName.decodeOEM(try r.array(idOffset + 4, 11)).trimmingTrailingSpaces()
                if !text.isEmpty, text != "NO NAME" { label = text }
            }
        }
        let boot = FATBootSector(
            variant: variant, bytesPerSector: bytesPerSector, sectorsPerCluster: sectorsPerCluster,
            clusterSize: bytesPerSector * sectorsPerCluster,
            fatOffset: (reserved + activeFAT * sectorsPerFAT) * bytesPerSector, fatBytes: fatBytes,
            rootDirOffset: (reserved + fatCount * sectorsPerFAT) * bytesPerSector,
            rootDirBytes: isFAT32 ? 0 : rootEntries * 32,
            dataOffset: firstDataSector * bytesPerSector, clusterCount: UInt32(clusters),
            rootCluster: rootCluster, volumeID: volumeID, label: label)
        guard boot.dataOffset <= device.size else {
            throw r.error(at: 14, "the data region starts at byte \(boot.dataOffset), past the end of the \(device.size)-byte device")
        }
        // Clusters past the end of the device cannot be read anyway; not counting them
        // also bounds every chain walk by the device's real size.
        var bounded = boot
        let readable = (device.size - boot.dataOffset) / boot.clusterSize
        bounded.clusterCount = UInt32(min(UInt64(boot.clusterCount), max(readable, 1)))
        if isFAT32, rootCluster >= bounded.firstInvalidCluster {
            throw r.error(at: 44, "root directory cluster \(rootCluster) lies past the end of the device")
        }
        return bounded
    }

    /// Byte offset of cluster `n` (2-based, already range-checked by the caller).
    func offset(ofCluster n: UInt32) -> UInt64 {
        dataOffset + UInt64(n - 2) * clusterSize
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
