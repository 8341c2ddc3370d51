import Foundation
import Testing
import FileSystems
import GuestInspect
import Partitions
import WispCore
import WispTestSupport

/// `GuestDisk` on a GPT disk made by sgdisk whose FAT filesystems mkfs.vfat made and mtools
/// filled (GuestDiskFixture); blkid is the judge of what each partition holds.
@Suite struct GuestDiskTests {
    @Test func findsPartitionsAndFilesystemsLikeBlkid() throws {
        let fixture = try GuestDiskFixture()
        let disk = try GuestDisk(path: fixture.disk)
        #expect(disk.table.scheme == .gpt)
        #expect(disk.volumes.map(\.partition.number) == [1, 2, 3])
        for volume in disk.volumes {
            let judge = try fixture.blkid(partition: volume.partition.number, start: volume.partition.startOffset,
                                          size: volume.partition.size)
            #expect(volume.kind?.rawValue == judge["TYPE"])
            #expect(volume.fileSystem?.label == judge["LABEL"])
            #expect(volume.fileSystem?.uuid == judge["UUID"])
        }
        #expect(disk.volumes[2].kind == nil)
        let report = disk.report
        #expect(report.partitions.count == 3)
        #expect(report.partitions[0].typeName == "EFI System")
        #expect(report.partitions[1].name == "rootfs")
        // Filesystems are listed by partition; partition 3 holds none.
        #expect(report.filesystems.map(\.partition) == [1, 2])
        #expect(report.filesystems.map(\.label) == ["ESPLABEL", "ROOTFS"])
        #expect(report.filesystems.allSatisfy { $0.type == "vfat" && $0.mountPoint == nil && $0.unreadable == nil })
    }

    @Test func treeIsTheOSRootWhenThereIsOne() throws {
        let fixture = try GuestDiskFixture()
        let disk = try GuestDisk(path: fixture.disk)
        #expect(disk.findOSRoot() == GuestDisk.OSRoot(volumeIndex: 1, sourcePath: "/"))
        let tree = try disk.guestTree()
        #expect(tree is GuestFileSystem)
        #expect(try tree.readFile("/etc/os-release") == Array("ID=debian\nVERSION_ID=\"12\"\n".utf8))
        #expect(tree.label == "ROOTFS")
    }

    @Test func withoutAnOSRootTheOnlyFilesystemIsTheTree() throws {
        let fixture = try GuestDiskFixture(withRoot: false)
        let disk = try GuestDisk(path: fixture.disk)
        #expect(disk.findOSRoot() == nil)
        let tree = try disk.guestTree()
        #expect(!(tree is GuestFileSystem))
        #expect(tree.label == "ESPLABEL")
        #expect(try tree.readFile("/EFI/BOOT/BOOTX64.EFI") == Array("boot".utf8))
    }

    @Test func twoFilesystemsWithoutARootNeedAChoice() throws {
        let fixture = try GuestDiskFixture()
        // Remove the os-release file from the root filesystem with mtools.
        try ToolRunner.check("mdel", ["-i", "\(fixture.disk)@@\((2048 + 40 * 2048) * 512)", "::/etc/os-release"],
                             environment: GuestDiskFixture.environment)
        let disk = try GuestDisk(path: fixture.disk)
        #expect {
            _ = try disk.guestTree()
        } throws: { error in
            (error as? WispError)?.kind == .usage
                && "\(error)".contains("--partition") && "\(error)".contains("ESPLABEL") && "\(error)".contains("ROOTFS")
        }
    }

    @Test func selectorsNameEveryKindOfIdentifier() throws {
        let fixture = try GuestDiskFixture()
        let disk = try GuestDisk(path: fixture.disk)
        let esp = disk.volumes[0]
        let uuid = try #require(esp.fileSystem?.uuid)
        let partUUID = try #require(esp.partition.uniqueGUID)
        for selector in ["1", "ESPLABEL", "LABEL=ESPLABEL", "label=ESPLABEL", uuid, uuid.lowercased(), "UUID=\(uuid)",
                         partUUID, partUUID.uppercased(), "PARTUUID=\(partUUID)", "EFI System", "PARTLABEL=EFI System",
                         "/dev/vda1", "/dev/nvme0n1p1", "/dev/disk/by-label/ESPLABEL", "/dev/disk/by-partlabel/EFI\\x20System",
                         "/dev/disk/by-uuid/\(uuid)", "/dev/disk/by-partuuid/\(partUUID)"] {
            #expect(try disk.volume(selectedBy: DeviceSpec(selector: selector)).partition.number == 1, "\(selector)")
        }
        #expect(try disk.volume(selectedBy: DeviceSpec(selector: "rootfs")).partition.number == 2)
        #expect { _ = try disk.volume(selectedBy: DeviceSpec(selector: "7")) } throws: { error in
            (error as? WispError)?.kind == .notFound && "\(error)".contains("no partition or filesystem matches \"7\"")
        }
        #expect(throws: WispError.self) { _ = try disk.volume(selectedBy: DeviceSpec(selector: "LABEL=rootfs")) }
        // Partition 3 exists but holds nothing readable.
        #expect {
            _ = try disk.fileSystem(selectedBy: DeviceSpec(selector: "3"))
        } throws: { error in "\(error)".contains("partition 3") }
    }

    @Test func wholeDiskFilesystem() throws {
        let dir = try TemporaryDirectory("wholefat")
        let image = dir.file("fat.img")
        try ToolRunner.check("mkfs.vfat", ["-C", "-n", "CIDATA", image, "2048"])
        try GuestDiskFixture.write(dir.file("user-data"), Array("#cloud-config\n".utf8), mtime: 1_700_000_000)
        try ToolRunner.check("mcopy", ["-m", "-i", image, dir.file("user-data"), "::/user-data"], environment: GuestDiskFixture.environment)
        let disk = try GuestDisk(path: image)
        #expect(disk.table.scheme == PartitionScheme.none)
        #expect(try disk.volume(selectedBy: DeviceSpec(selector: "CIDATA")).partition.number == 0)
        // /dev/vda names the whole disk, as the kernel would see it.
        #expect(try disk.volume(selectedBy: DeviceSpec(selector: "/dev/vda")).partition.number == 0)
        #expect(try disk.guestTree().readFile("/user-data") == Array("#cloud-config\n".utf8))
    }
}

@Suite struct GuestDiskExt4Tests {
    /// A cloud-image layout: ESP first in the table, ext4 root after; the tree is the ext4
    /// root because it holds /etc/os-release (a symlink to ../usr/lib/os-release, as on
    /// Debian).
    @Test func treeIsTheExt4RootEvenAfterAnESP() throws {
        let fixture = try GuestDiskFixture(withRoot: false)
        let tree = fixture.directory.file("ext4tree")
        try GuestDiskFixture.write("\(tree)/usr/lib/os-release", Array("ID=debian\n".utf8), mtime: 1_690_000_000)
        try FileManager.default.createDirectory(atPath: "\(tree)/etc", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(tree)/etc/os-release", withDestinationPath: "../usr/lib/os-release")

        let offset: UInt64 = (2048 + 40 * 2048) * 512
        try ToolRunner.check("mkfs.ext4", ["-q", "-F", "-L", "cloudimg-rootfs", "-d", tree, "-E", "offset=\(offset)", fixture.disk, "40M"])
        let disk = try GuestDisk(path: fixture.disk)
        let root = try #require(disk.findOSRoot())
        #expect(disk.volumes[root.volumeIndex].partition.number == 2)
        #expect(disk.volumes[root.volumeIndex].kind == .ext4)
        let guest = try disk.guestTree()
        #expect(guest.label == "cloudimg-rootfs")
        #expect(guest.typeName == "ext4")
        #expect(try guest.readFile("/etc/os-release") == Array("ID=debian\n".utf8))
        let esp = try disk.fileSystem(selectedBy: DeviceSpec(selector: "ESPLABEL"))
        #expect(esp.typeName == "vfat")
        #expect(try disk.report.filesystems.map(\.type) == ["vfat", "ext4"])
    }
}
