import FileSystems
import WispCore

extension GuestInspector {
    /// Whether mount options name a btrfs subvolume (`subvol=` or `subvolid=`).
    static func selectsSubvolume(_ options: String) -> Bool {
        options.split(separator: ",").contains { $0.hasPrefix("subvol=") || $0.hasPrefix("subvolid=") }
    }

    /// A reader presenting the subvolume `options` select as its root, and that subvolume's
    /// path from the top level ("/" for the top level itself), which is where GRUB and BLS
    /// paths on the filesystem find it.
    static func openSubvolume(of btrfs: BtrfsReader, options: String) throws -> (BtrfsReader, String) {
        let reader = try BtrfsReader(device: btrfs.device, subvolume: .options(options))
        let id = reader.subvolumeID
        if id == 5 { return (reader, "/") }  // BTRFS_FS_TREE_OBJECTID: the top level
        guard let info = try btrfs.subvolumes().first(where: { $0.id == id }) else {
            throw WispError.notFound("\(btrfs.device.name): btrfs subvolume \(id) is not linked from the top level")
        }
        return (reader, MountView.normalize(info.path))
    }
}

extension GuestInspector {
    /// The subvolume an fstab entry mounts, or nil when its subvol= names no subvolume (the
    /// caller then follows it as a directory). A subvolid= that cannot be opened is a
    /// warning: there is nothing else to follow.
    static func openedSubvolume(of btrfs: BtrfsReader, entry: FstabEntry, warnings: inout [String]) -> (BtrfsReader, String)? {
        do {
            return try openSubvolume(of: btrfs, options: entry.options)
        } catch let error as WispError {
            if case .id = BtrfsSubvolumeSelector.options(entry.options) {
                warnings.append("fstab line \(entry.line): \(entry.mountPoint): \(reason(error))")
            }
            return nil
        } catch {
            return nil
        }
    }
}
