import FileSystems
import Partitions
import WispCore

/// One partition of a guest disk (or the whole disk when it has no table) and what is on
/// it: the filesystem kind its magic shows and, when Wisp has a reader for it, the open
/// filesystem. `unreadable` says why a recognised filesystem could not be opened (or why
/// the partition could not even be probed).
public struct GuestVolume: Sendable {
    public let partition: Partition
    public let device: any BlockDevice
    public let kind: FileSystemKind?
    public let fileSystem: (any FileSystem)?
    public let unreadable: String?

    /// "partition 15 (vfat, label UEFI)" for messages.
    public var displayName: String {
        var parts: [String] = []
        if let kind { parts.append(kind.rawValue) }
        if let label = fileSystem?.label { parts.append("label \(label)") }
        if let name = partition.name { parts.append("PARTLABEL \(name)") }
        let what = partition.number == 0 ? "the whole disk" : "partition \(partition.number)"
        return parts.isEmpty ? what : "\(what) (\(parts.joined(separator: ", ")))"
    }

    /// What `wisp inspect` and `wisp image info` say about the filesystem, if one was
    /// recognised; `mountPoint` is where the guest mounts it, when known.
    public func info(mountPoint: String? = nil) -> FileSystemInfo? {
        guard let kind else { return nil }
        return FileSystemInfo(partition: partition.number, type: fileSystem?.typeName ?? kind.rawValue,
                              label: fileSystem?.label, uuid: fileSystem?.uuid, mountPoint: mountPoint,
                              unreadable: unreadable)
    }
}
