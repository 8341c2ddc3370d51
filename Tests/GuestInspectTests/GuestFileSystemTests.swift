import Foundation
import FileSystems
import GuestInspect
import Testing
import WispCore
import WispTestSupport

/// The guest's tree as one `FileSystem`, on cloud image layouts built with the real mkfs
/// tools: mounts appear where fstab puts them, hide what is beneath, paths and symlinks
/// cross them, and inode numbers stay unique across them.
@Suite struct GuestFileSystemTests {
    static func names(_ fs: any FileSystem, _ path: String) throws -> [String] {
        try fs.list(directory: fs.resolve(path).inode).map(\.name).sorted()
    }

    /// Every (inode, guest path) reachable from the root, directories walked once.
    static func walk(_ fs: any FileSystem) throws -> [(UInt64, String)] {
        var found: [(UInt64, String)] = [(fs.rootInode, "/")]
        var queue: [(UInt64, String)] = [(fs.rootInode, "")]
        while let (inode, path) = queue.popLast() {
            for entry in try fs.list(directory: inode) {
                let child = path + "/" + entry.name
                found.append((entry.inode, child))
                if try (entry.type ?? fs.stat(inode: entry.inode).type) == .directory { queue.append((entry.inode, child)) }
            }
        }
        return found
    }

    @Test func ubuntuBootAndESPAreMountedInTheTree() throws {
        let guest = try CloudImageLayouts.ubuntu(try GuestLayout("tree-ubuntu"))
        let disk = try GuestDisk(path: guest.disk)
        let tree = try GuestFileSystem(inspector: try GuestInspector(guestDisk: disk))
        let boot = try disk.fileSystem(selectedBy: .partitionNumber(16))
        let esp = try disk.fileSystem(selectedBy: .fileSystemLabel("UEFI"))
        // /boot is the boot partition's top level (the root's /boot/.keep is hidden), and
        // /boot/efi the ESP's.
        #expect(try Self.names(tree, "/boot") == Self.names(boot, "/"))
        #expect(try !Self.names(tree, "/boot").contains(".keep"))
        #expect(try Self.names(tree, "/boot/efi") == ["EFI"])
        #expect(try Self.names(tree, "/boot/efi/EFI") == Self.names(esp, "/EFI"))
        // The mount point is listed as the mounted filesystem's root.
        let bootEntry = try #require(try tree.list(directory: tree.rootInode).first { $0.name == "boot" })
        #expect(bootEntry.type == .directory)
        var bootRoot = try boot.stat(inode: boot.rootInode)
        bootRoot.inode = bootEntry.inode
        #expect(try tree.stat(inode: bootEntry.inode) == bootRoot)
        // The root's relative /vmlinuz link lands on the /boot partition; ".." climbs out
        // of a mount to the directory it is mounted on.
        #expect(try tree.readFile("/vmlinuz") == guest.kernel)
        #expect(try tree.resolve("/boot/efi/../vmlinuz").path == "/boot/vmlinuz-\(guest.version)")
        #expect(try tree.resolve("/boot/efi/../vmlinuz", followFinalSymlink: false).path == "/boot/vmlinuz")
        #expect(try tree.readFile("/boot/efi/../../etc/os-release") == (try disk.fileSystem(selectedBy: .partitionNumber(1)).readFile("/etc/os-release")))
        // Three ext4/vfat filesystems with overlapping inode numbers (both ext4 roots are
        // inode 2): every path still has its own number, and stat agrees with the listing.
        let all = try Self.walk(tree)
        let byInode = Dictionary(grouping: all, by: \.0)
        let shared = byInode.filter { $0.value.count > 1 }
        #expect(shared.isEmpty, "\(shared)")
        for (inode, path) in all.prefix(50) {
            #expect(try tree.stat(inode: inode).inode == inode, "\(path)")
        }
        #expect(all.contains { $0.1 == "/boot/efi/EFI/ubuntu/shimx64.efi" })
    }

    @Test func fedoraRootSubvolumeAndHome() throws {
        let guest = try CloudImageLayouts.fedoraBtrfs(try GuestLayout("tree-fedora"))
        let tree = try GuestDisk(path: guest.disk).guestTree()
        #expect(tree is GuestFileSystem)
        #expect(String(decoding: try tree.readFile("/etc/os-release"), as: UTF8.self).contains("ID=fedora"))
        #expect(try Self.names(tree, "/home") == ["fedora"])
        #expect(try tree.readFile("/home/fedora/.bashrc") == Array("# fedora home\n".utf8))
        #expect(try Self.names(tree, "/boot").contains("vmlinuz-\(guest.version)"))
        #expect(try tree.readFile("/boot/vmlinuz-\(guest.version)") == guest.kernel)
        #expect(tree.typeName == "btrfs")
        #expect(tree.label == "fedora")
    }

    @Test func el9XFSBoot() throws {
        let guest = try CloudImageLayouts.el9XFS(try GuestLayout("tree-el9"))
        let disk = try GuestDisk(path: guest.disk)
        let tree = try disk.guestTree()
        #expect(try Self.names(tree, "/boot") == Self.names(try disk.fileSystem(selectedBy: .partitionNumber(3)), "/"))
        #expect(try tree.readFile("/boot/initramfs-\(guest.version).img") == guest.initrd)
    }

    @Test func aMountWispCannotReadIsAnErrorNotAnEmptyDirectory() throws {
        // An XFS filesystem whose superblock CRC no longer matches (one label byte changed
        // after mkfs.xfs): /srv/data names it; listing there says why it cannot be read.
        let layout = try GuestLayout("tree-unreadable")
        let data = try layout.xfs(["/file": .text("data")], uuid: "44444444-0000-4000-8000-000000000004", label: "data")
        try ToolRunner.check("dd", ["of=\(data)", "bs=1", "seek=108", "count=1", "conv=notrunc", "status=none"], input: Data("X".utf8))
        let root = try layout.ext4([
            "/etc/os-release": GuestLayout.osRelease(id: "debian", version: "12", name: "Debian GNU/Linux"),
            "/etc/fstab": .text("UUID=\(CloudImageLayouts.rootUUID) / ext4 defaults 0 1\n/dev/vda2 /srv/data xfs defaults 0 2\n"),
            "/srv/data/.hidden": .text("beneath the mount"),
        ], uuid: CloudImageLayouts.rootUUID, label: "root")
        let disk = try layout.gptDisk([
            .init(number: 1, image: root, sizeMiB: 24, typeCode: "8300", name: "root", guid: CloudImageLayouts.rootPartUUID),
            .init(number: 2, image: data, sizeMiB: 300, typeCode: "8300", name: "data", guid: CloudImageLayouts.bootPartUUID),
        ])
        let tree = try GuestDisk(path: disk).guestTree()
        #expect(try Self.names(tree, "/srv") == ["data"])
        #expect {
            _ = try Self.names(tree, "/srv/data")
        } throws: { error in
            (error as? WispError)?.kind == .unsupported && "\(error)".contains("/srv/data is xfs on partition 2")
                && "\(error)".contains("CRC")
        }
    }
}
