import FileSystems
import WispCore

extension GuestDisk {
    /// What `wisp fs` reads when not given `--partition`: the guest's tree (root plus every
    /// fstab mount Wisp can read, as `GuestFileSystem`) when a filesystem holds an OS root;
    /// otherwise an ISO image's own ISO 9660 tree, or the only filesystem there is (a data
    /// disk, a seed image). Several
    /// filesystems and no OS root is an error listing them.
    public func guestTree() throws -> any FileSystem {
        let search = searchOSRoot()
        if let root = search.root {
            return try GuestFileSystem(inspector: try GuestInspector(guestDisk: self, root: root))
        }
        // A CD image is read as the medium, whatever partitions its isohybrid table adds.
        if let medium = mediumVolume?.fileSystem { return medium }
        let readable = readableVolumes
        if readable.count == 1, let only = readable[0].fileSystem { return only }
        if readable.isEmpty {
            // Say what each partition held, so "nothing readable" always comes with a reason.
            let problems = volumes.map { v in
                "\(v.displayName): " + (v.unreadable ?? "no filesystem Wisp recognises (no known superblock magic)")
            }
            let detail = problems.isEmpty
                ? " (the \(table.scheme.rawValue) partition table lists no partition that can hold one)"
                : " (" + problems.joined(separator: "; ") + ")"
            throw WispError.notFound("\(name): no readable filesystem found" + detail)
        }
        if let failure = osRootFailure() { throw failure }
        throw WispError.usage("\(name): \(readable.count) filesystems and none holds an OS root; choose one with --partition: "
            + readable.map(\.displayName).joined(separator: ", "))
    }
}
