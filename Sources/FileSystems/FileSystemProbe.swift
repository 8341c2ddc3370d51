import WispCore

/// The filesystem kinds Wisp recognises by superblock magic.
public enum FileSystemKind: String, Sendable, Codable, CaseIterable {
    case ext4, xfs, btrfs, vfat, iso9660, swap, squashfs
}

public enum FileSystemProbe {
    /// Identifies the filesystem on `device` from its magic numbers, or nil. Reads at most
    /// a few small blocks; never trusts sizes from the device.
    public static func probe(_ device: any BlockDevice) throws -> FileSystemKind? {
        func bytes(_ offset: UInt64, _ count: Int) throws -> [UInt8]? {
            guard device.size >= offset + UInt64(count) else { return nil }
            return try device.read(at: offset, count: count)
        }
        if let b = try bytes(0x438, 2), b == [0x53, 0xEF] { return .ext4 }
        if let b = try bytes(0, 4), b == Array("XFSB".utf8) { return .xfs }
        if let b = try bytes(0x10040, 8), b == Array("_BHRfS_M".utf8) { return .btrfs }
        if let b = try bytes(0x8001, 5), b == Array("CD001".utf8) { return .iso9660 }
        if let b = try bytes(0, 4), b == Array("hsqs".utf8) { return .squashfs }
        if device.size >= 4096, let b = try bytes(4096 - 10, 10),
           b == Array("SWAPSPACE2".utf8) { return .swap }
        if let sector = try bytes(0, 512), sector[510] == 0x55, sector[511] == 0xAA {
            // A FAT boot sector: a jump instruction, sane bytes per sector and a FAT count.
            let jump = sector[0] == 0xEB || sector[0] == 0xE9
            let bytesPerSector = UInt16(sector[11]) | UInt16(sector[12]) << 8
            let fats = sector[16]
            let sectorsPerCluster = sector[13]
            if jump, [512, 1024, 2048, 4096].contains(bytesPerSector), fats >= 1, fats <= 4,
               sectorsPerCluster != 0, sectorsPerCluster & (sectorsPerCluster - 1) == 0 {
                return .vfat
            }
        }
        return nil
    }
}
