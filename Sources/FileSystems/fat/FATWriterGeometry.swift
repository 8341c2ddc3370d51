import WispCore

/// Sizes and offsets of the regions of a FAT volume with 512-byte sectors and two FATs.
public struct FATGeometry: Sendable, Equatable {
    public static let sectorSize: UInt64 = 512
    public let type: FATWriter.FATType
    public let totalSectors: UInt64
    public let sectorsPerCluster: Int
    public let reservedSectors: Int
    public let rootEntryCount: Int
    public let sectorsPerFAT: UInt64
    public let clusterCount: UInt64

    public var totalBytes: UInt64 { totalSectors * Self.sectorSize }
    public var bytesPerCluster: Int { sectorsPerCluster * 512 }
    var rootDirectorySectors: UInt64 { UInt64(rootEntryCount * 32 + 511) / 512 }
    var firstFATSector: UInt64 { UInt64(reservedSectors) }
    var rootDirectorySector: UInt64 { UInt64(reservedSectors) + 2 * sectorsPerFAT }
    var firstDataSector: UInt64 { rootDirectorySector + rootDirectorySectors }

    func clusterOffset(_ cluster: UInt32) -> UInt64 {
        (firstDataSector + UInt64(cluster - 2) * UInt64(sectorsPerCluster)) * Self.sectorSize
    }

    static func clusterRange(_ type: FATWriter.FATType) -> ClosedRange<UInt64> {
        switch type {
        case .fat12: return 1...4084
        case .fat16: return 4085...65524
        case .fat32: return 65525...0x0FFF_FFF5
        }
    }

    /// The geometry for `totalSectors` with this type and cluster size, or nil when the
    /// cluster count falls outside what the type allows (the rule every FAT driver applies).
    init?(type: FATWriter.FATType, totalSectors: UInt64, sectorsPerCluster: Int) {
        self.type = type
        self.totalSectors = totalSectors
        self.sectorsPerCluster = sectorsPerCluster
        reservedSectors = type == .fat32 ? 32 : 1
        rootEntryCount = type == .fat32 ? 0 : 512
        let rootSectors = UInt64(rootEntryCount * 32 + 511) / 512
        let bitsPerEntry: UInt64 = type == .fat12 ? 12 : (type == .fat16 ? 16 : 32)
        var fatSectors: UInt64 = 1
        var clusters: UInt64 = 0
        // Fixed point: FAT size depends on the cluster count, which depends on the FAT size.
        for _ in 0..<64 {
            let overhead = UInt64(reservedSectors) + rootSectors + 2 * fatSectors
            guard totalSectors > overhead else { return nil }
            clusters = (totalSectors - overhead) / UInt64(sectorsPerCluster)
            let needed = ((clusters + 2) * bitsPerEntry + 4095) / 4096
            if needed <= fatSectors { break }
            fatSectors = needed
        }
        sectorsPerFAT = fatSectors
        clusterCount = clusters
        guard Self.clusterRange(type).contains(clusters) else { return nil }
    }

    /// mkfs.vfat's defaults: FAT32 at 512 MiB and up (4 KiB clusters, more on huge disks);
    /// below, FAT12 with 2 KiB clusters if the count fits, else FAT16 with 2/4/8 KiB clusters.
    static func choose(totalBytes: UInt64, forced: FATWriter.FATType?) -> FATGeometry? {
        let sectors = totalBytes / sectorSize
        let mib = totalBytes >> 20
        let fat16Cluster = mib <= 128 ? 4 : (mib <= 256 ? 8 : 16)
        let fat32Cluster = mib <= 8192 ? 8 : (mib <= 16384 ? 16 : (mib <= 32768 ? 32 : 64))
        let preferences: [(FATWriter.FATType, Int)]
        switch forced {
        case nil:
            preferences = mib >= 512 ? [(.fat32, fat32Cluster)] : [(.fat12, 4), (.fat16, fat16Cluster), (.fat12, 8), (.fat12, 16)]
        case .fat12?: preferences = [(.fat12, 4)]
        case .fat16?: preferences = [(.fat16, fat16Cluster)]
        case .fat32?: preferences = [(.fat32, fat32Cluster)]
        }
        for (type, cluster) in preferences {
            if let geometry = FATGeometry(type: type, totalSectors: sectors, sectorsPerCluster: cluster) { return geometry }
        }
        if let forced {
            for cluster in [1, 2, 4, 8, 16, 32, 64, 128] {
                if let geometry = FATGeometry(type: forced, totalSectors: sectors, sectorsPerCluster: cluster) { return geometry }
            }
        }
        return nil
    }
}
