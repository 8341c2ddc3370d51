import Partitions

/// The partition table of a guest disk and the filesystems on it: what `wisp image info`
/// adds to the image's own facts (`wisp inspect` reports the same `PartitionInfo` and
/// `FileSystemInfo`, with mount points).
public struct GuestDiskReport: Codable, Sendable, Equatable {
    /// "gpt", "mbr" or "none" in JSON.
    public var scheme: PartitionScheme
    public var sectorSize: Int
    /// GPT disk GUID, or the MBR disk signature as 8 hex digits.
    public var diskGUID: String?
    public var warnings: [String]
    public var partitions: [PartitionInfo]
    public var filesystems: [FileSystemInfo]
    /// Set when the image is a CD image (ISO 9660 from byte 0).
    public var iso: ISOMediumReport? = nil
}

extension GuestDisk {
    public var report: GuestDiskReport {
        GuestDiskReport(scheme: table.scheme, sectorSize: table.sectorSize, diskGUID: table.diskGUID,
                        warnings: table.warnings, partitions: table.partitions.map(PartitionInfo.init),
                        filesystems: volumes.compactMap { $0.info() }, iso: isoReport)
    }
}
