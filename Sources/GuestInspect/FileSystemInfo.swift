/// A filesystem found on a guest disk, as `wisp inspect` and `wisp image info` report it.
public struct FileSystemInfo: Codable, Sendable, Equatable {
    /// The partition number (0: the whole disk, no partition table).
    public var partition: Int
    /// "ext4", "xfs", "btrfs", "vfat", ... (ext2 and ext3 by their own names).
    public var type: String
    public var label: String?
    public var uuid: String?
    /// Where the guest mounts it (from fstab), if it does and that is known.
    public var mountPoint: String?
    /// Why Wisp could not read it, e.g. "ISO 9660 reader not available yet".
    public var unreadable: String?

    public init(partition: Int, type: String, label: String? = nil, uuid: String? = nil, mountPoint: String? = nil,
                unreadable: String? = nil) {
        self.partition = partition
        self.type = type
        self.label = label
        self.uuid = uuid
        self.mountPoint = mountPoint
        self.unreadable = unreadable
    }
}
