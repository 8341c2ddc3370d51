import FileSystems
import WispCore

extension GuestDisk {
    /// What `wisp fs` reads when not given `--partition`: the guest's tree (root plus every
    /// fstab mount Wisp can read, as `GuestFileSystem`) when a filesystem holds an OS root;
    /// otherwise the only filesystem there is (a data disk, a seed image). Several
    /// filesystems and no OS root is an error listing them.
    public func guestTree() throws -> any FileSystem {
        if let root = findOSRoot() {
            return try GuestFileSystem(inspector: try GuestInspector(guestDisk: self, root: root))
        }
        let readable = readableVolumes
        if readable.count == 1, let only = readable[0].fileSystem { return only }
        if readable.isEmpty {
            let problems = volumes.compactMap { v in v.unreadable.map { "\(v.displayName): \($0)" } }
            throw WispError.notFound("\(name): no readable filesystem found"
                + (problems.isEmpty ? "" : " (" + problems.joined(separator: "; ") + ")"))
        }
        throw WispError.usage("\(name): \(readable.count) filesystems and none holds an OS root; choose one with --partition: "
            + readable.map(\.displayName).joined(separator: ", "))
    }
}
