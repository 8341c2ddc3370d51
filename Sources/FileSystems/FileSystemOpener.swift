import WispCore

/// Opens the filesystem on a device with the reader its magic calls for.
public enum FileSystemOpener {
    public static func open(_ device: any BlockDevice) throws -> any FileSystem {
        guard let kind = try FileSystemProbe.probe(device) else {
            throw WispError.unsupported(device.name, "no filesystem recognised")
        }
        return try open(device, as: kind)
    }

    public static func open(_ device: any BlockDevice, as kind: FileSystemKind) throws -> any FileSystem {
        switch kind {
        case .ext4:
            return try Ext4Reader(device: device)
        case .vfat:
            return try FATFileSystem(device: device)
        case .xfs:
            return try XFSReader(device: device)
        case .btrfs:
            return try BtrfsReader(device: device)
        case .iso9660:
            return try ISO9660Reader(device: device)
        case .swap, .squashfs:
            throw WispError.unsupported(device.name, "\(kind.rawValue) holds no files Wisp can read")
        }
    }
}
