import Foundation
import Testing
import FileSystems
import Partitions
import WispCore
import WispTestSupport
@testable import WispKit

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
        let summary = disk.summary
        #expect(summary.partitions.count == 3)
        #expect(summary.partitions[0].filesystem?.label == "ESPLABEL")
        #expect(summary.partitions[0].typeName == "EFI System")
        #expect(summary.textLines.contains { $0.contains("vfat label \"ROOTFS\"") })
    }

    @Test func defaultIsTheFilesystemWithAnOSRoot() throws {
        let fixture = try GuestDiskFixture()
        let disk = try GuestDisk(path: fixture.disk)
        let chosen = try disk.defaultVolume()
        #expect(chosen.partition.number == 2)
        let fs = try disk.fileSystem(selector: nil)
        #expect(try fs.readFile("/etc/os-release") == Array("ID=debian\nVERSION_ID=\"12\"\n".utf8))
    }

    @Test func withoutAnOSRootTheOnlyFilesystemIsTheDefault() throws {
        let fixture = try GuestDiskFixture(withRoot: false)
        let disk = try GuestDisk(path: fixture.disk)
        #expect(try disk.defaultVolume().partition.number == 1)
    }

    @Test func twoFilesystemsWithoutARootNeedAChoice() throws {
        let fixture = try GuestDiskFixture()
        // Remove the os-release file from the root filesystem with mtools.
        try ToolRunner.check("mdel", ["-i", "\(fixture.disk)@@\((2048 + 40 * 2048) * 512)", "::/etc/os-release"],
                             environment: GuestDiskFixture.environment)
        let disk = try GuestDisk(path: fixture.disk)
        #expect {
            _ = try disk.defaultVolume()
        } throws: { error in
            "\(error)".contains("--partition") && "\(error)".contains("ESPLABEL") && "\(error)".contains("ROOTFS")
        }
    }

    @Test func selectorsNameEveryKindOfIdentifier() throws {
        let fixture = try GuestDiskFixture()
        let disk = try GuestDisk(path: fixture.disk)
        let esp = disk.volumes[0]
        let uuid = try #require(esp.fileSystem?.uuid)
        let partUUID = try #require(esp.partition.uniqueGUID)
        for selector in ["1", "ESPLABEL", "LABEL=ESPLABEL", uuid, uuid.lowercased(), "UUID=\(uuid)", partUUID,
                         partUUID.uppercased(), "PARTUUID=\(partUUID)", "EFI System", "PARTLABEL=EFI System"] {
            #expect(try disk.volume(matching: selector).partition.number == 1, "\(selector)")
        }
        #expect(try disk.volume(matching: "rootfs").partition.number == 2)
        #expect(throws: WispError.self) { _ = try disk.volume(matching: "7") }
        #expect(throws: WispError.self) { _ = try disk.volume(matching: "LABEL=rootfs") }
        // Partition 3 exists but holds nothing readable.
        #expect {
            _ = try disk.fileSystem(selector: "3")
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
        let volume = try disk.volume(matching: "CIDATA")
        #expect(volume.partition.number == 0)
        #expect(try disk.fileSystem(selector: nil).readFile("/user-data") == Array("#cloud-config\n".utf8))
    }

    @Test func listingLooksLikeLs() throws {
        let fixture = try GuestDiskFixture()
        let fs = try GuestDisk(path: fixture.disk).fileSystem(selector: "1")
        let entries = try GuestListing.list(fs, path: "/EFI/debian", long: true)
        #expect(entries.map(\.name) == ["grub.cfg", "shimx64.efi"])
        let lines = GuestListing.longLines(entries)
        #expect(lines[0] == "-rwxr-xr-x 1 0 0     17 2023-11-14 22:13 grub.cfg")
        #expect(lines[1] == "-rwxr-xr-x 1 0 0 300000 2023-11-14 22:15 shimx64.efi")
        let file = try GuestListing.list(fs, path: "/EFI/BOOT/BOOTX64.EFI", long: false)
        #expect(file.map(\.name) == ["BOOTX64.EFI"])
        #expect(GuestListing.modeString(FileStat(inode: 1, type: .regular, permissions: 0o4755, size: 0)) == "-rwsr-xr-x")
        #expect(GuestListing.modeString(FileStat(inode: 1, type: .directory, permissions: 0o1777, size: 0)) == "drwxrwxrwt")
        #expect(GuestListing.modeString(FileStat(inode: 1, type: .symlink, permissions: 0o2644, size: 0)) == "lrw-r-Sr--")
    }

    @Test func extractionKeepsBytesModesAndTimes() throws {
        let fixture = try GuestDiskFixture()
        let fs = try GuestDisk(path: fixture.disk).fileSystem(selector: "ESPLABEL")
        let out = try TemporaryDirectory("extract")
        // A directory tree into a new path.
        let report = try GuestExtraction(fileSystem: fs).extract("/EFI", to: out.file("efi"))
        #expect(report.files == 3)
        #expect(report.directories == 3)
        for relative in ["debian/grub.cfg", "debian/shimx64.efi", "BOOT/BOOTX64.EFI"] {
            let host = "\(fixture.espTree)/EFI/\(relative)"
            let copied = out.file("efi/\(relative)")
            #expect(FileManager.default.contents(atPath: copied) == FileManager.default.contents(atPath: host))
            let hostDate = try FileManager.default.attributesOfItem(atPath: host)[.modificationDate] as? Date
            let attributes = try FileManager.default.attributesOfItem(atPath: copied)
            #expect((attributes[.modificationDate] as? Date) == hostDate)
            #expect((attributes[.posixPermissions] as? Int) == 0o755)
        }
        // Into an existing directory: the copy lands inside it; no temporary files remain.
        let report2 = try GuestExtraction(fileSystem: fs).extract("/EFI/debian/grub.cfg", to: out.path)
        #expect(report2.files == 1)
        #expect(FileManager.default.contents(atPath: out.file("grub.cfg")) == Array("search --fs-uuid\n".utf8).data)
        // Over an existing file: replaced atomically.
        try Data("old".utf8).write(to: URL(fileURLWithPath: out.file("grub.cfg")))
        _ = try GuestExtraction(fileSystem: fs).extract("/EFI/debian/grub.cfg", to: out.file("grub.cfg"))
        #expect(FileManager.default.contents(atPath: out.file("grub.cfg")) == Array("search --fs-uuid\n".utf8).data)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty)
        // A directory that already exists inside the destination is refused, not merged.
        _ = try GuestExtraction(fileSystem: fs).extract("/EFI", to: out.path)
        #expect(FileManager.default.fileExists(atPath: out.file("EFI/BOOT/BOOTX64.EFI")))
        #expect(throws: WispError.self) { _ = try GuestExtraction(fileSystem: fs).extract("/EFI", to: out.path) }
    }
}

extension Array where Element == UInt8 {
    var data: Data { Data(self) }
}

@Suite struct GuestDiskExt4Tests {
    /// A cloud-image layout: ESP first in the table, ext4 root after; the root is the
    /// default because it holds /etc/os-release (a symlink to ../usr/lib/os-release, as
    /// on Debian).
    @Test func defaultIsTheExt4RootEvenAfterAnESP() throws {
        let fixture = try GuestDiskFixture(withRoot: false)
        let tree = fixture.directory.file("ext4tree")
        try GuestDiskFixture.write("\(tree)/usr/lib/os-release", Array("ID=debian\n".utf8), mtime: 1_690_000_000)
        try FileManager.default.createDirectory(atPath: "\(tree)/etc", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(tree)/etc/os-release", withDestinationPath: "../usr/lib/os-release")

        let offset: UInt64 = (2048 + 40 * 2048) * 512
        try ToolRunner.check("mkfs.ext4", ["-q", "-F", "-L", "cloudimg-rootfs", "-d", tree, "-E", "offset=\(offset)", fixture.disk, "40M"])
        let disk = try GuestDisk(path: fixture.disk)
        let root = try disk.defaultVolume()
        #expect(root.partition.number == 2)
        #expect(root.kind == .ext4)
        #expect(root.fileSystem?.label == "cloudimg-rootfs")
        #expect(try disk.fileSystem(selector: nil).readFile("/etc/os-release") == Array("ID=debian\n".utf8))
        let esp = try disk.fileSystem(selector: "ESPLABEL")
        #expect(esp.typeName == "vfat")
    }
}

@Suite struct GuestListingTests {
    /// Large directories are stat'ed in parallel; the result must equal the sequential one
    /// and be sorted by name, as mdir lists the same names.
    @Test func bigDirectoryListingIsCompleteAndSorted() throws {
        let dir = try TemporaryDirectory("biglist")
        let image = dir.file("fat.img"), tree = dir.file("many")
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        for i in 0..<200 {
            try GuestDiskFixture.write("\(tree)/file-\(i).dat", Array(repeating: UInt8(i & 0xFF), count: i), mtime: 1_700_000_000 + Double(i) * 2)
        }
        try ToolRunner.check("mkfs.vfat", ["-C", image, "4096"])
        try ToolRunner.check("mcopy", ["-s", "-m", "-i", image, tree, "::/"], environment: GuestDiskFixture.environment)
        let fs = try GuestDisk(path: image).fileSystem(selector: nil)
        let long = try GuestListing.list(fs, path: "/many", long: true)
        let short = try GuestListing.list(fs, path: "/many", long: false)
        #expect(long.map(\.name) == short.map(\.name))
        #expect(long.map(\.name) == (0..<200).map { "file-\($0).dat" }.sorted())
        for entry in long {
            let i = try #require(Int(entry.name.dropFirst(5).dropLast(4)))
            #expect(entry.size == UInt64(i))
            #expect(entry.mtime == 1_700_000_000 + Int64(i) * 2)
        }
        let mdir = try ToolRunner.check("mdir", ["-b", "-i", image, "::/many"], environment: GuestDiskFixture.environment).stdoutText
        #expect(mdir.split(separator: "\n").count == 200)
    }
}

@Suite struct GuestExtractionExt4Tests {
    /// An ext4 tree made by mkfs.ext4 -d with owners, odd modes, symlinks and an empty
    /// directory comes back out identical: contents (diff -r), modes, owners (we run as
    /// root in CI; otherwise owners are not compared), mtimes and link targets.
    @Test func getRestoresAnExt4TreeFaithfully() throws {
        let dir = try TemporaryDirectory("getext4")
        let tree = dir.file("tree"), image = dir.file("root.img")
        try GuestDiskFixture.write("\(tree)/etc/os-release", Array("ID=test\n".utf8), mtime: 1_600_000_000)
        try GuestDiskFixture.write("\(tree)/srv/data/secret.key", Array("k".utf8), mtime: 1_600_000_100)
        try GuestDiskFixture.write("\(tree)/usr/bin/tool", Array(repeating: 0x90, count: 200_000), mtime: 1_600_000_200)
        try FileManager.default.createDirectory(atPath: "\(tree)/srv/empty", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(tree)/srv/data/link", withDestinationPath: "../../usr/bin/tool")
        try FileManager.default.createSymbolicLink(atPath: "\(tree)/srv/data/absolute", withDestinationPath: "/etc/os-release")
        chmod("\(tree)/srv/data/secret.key", 0o640)
        chmod("\(tree)/usr/bin/tool", 0o4755)
        chmod("\(tree)/srv/empty", 0o1777)
        let root = geteuid() == 0
        if root { chown("\(tree)/srv/data/secret.key", 1234, 5678) }
        try ToolRunner.check("mkfs.ext4", ["-q", "-F", "-d", tree, image, "32M"])
        let fs = try GuestDisk(path: image).fileSystem(selector: nil)
        let out = dir.file("out")
        let report = try GuestExtraction(fileSystem: fs).extract("/srv", to: out)
        #expect(report.symlinks == 2)
        #expect(report.warnings.isEmpty)
        _ = try GuestExtraction(fileSystem: fs).extract("/usr/bin/tool", to: dir.file("tool"))
        try ToolRunner.check("diff", ["-r", "--no-dereference", "\(tree)/srv", out])
        for (relative, copied) in [("srv/data/secret.key", "out/data/secret.key"), ("srv/empty", "out/empty"),
                                   ("usr/bin/tool", "tool"), ("srv/data/link", "out/data/link")] {
            var a = stat(), b = stat()
            #expect(lstat("\(tree)/\(relative)", &a) == 0)
            #expect(lstat(dir.file(copied), &b) == 0)
            #expect(a.st_mode == b.st_mode, "\(relative)")
            #expect(a.st_mtim.tv_sec == b.st_mtim.tv_sec, "\(relative)")
            if root {
                #expect(a.st_uid == b.st_uid, "\(relative)")
                #expect(a.st_gid == b.st_gid, "\(relative)")
            }
        }
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "\(out)/data/absolute") == "/etc/os-release")
    }
}
