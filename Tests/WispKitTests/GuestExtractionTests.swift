import Foundation
import Testing
import FileSystems
import GuestInspect
import WispCore
import WispTestSupport
@testable import WispKit

/// `GuestExtraction` (wisp fs get): FAT trees made by mtools, ext4 trees by mkfs.ext4 -d,
/// and a guest tree across mounts, copied out and judged by diff and stat.
@Suite struct GuestExtractionTests {
    @Test func extractionKeepsBytesModesAndTimes() throws {
        let fixture = try GuestDiskFixture()
        let fs = try GuestDisk(path: fixture.disk).fileSystem(selectedBy: .fileSystemLabel("ESPLABEL"))
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

    /// Through the guest tree, /boot is Ubuntu's /boot partition with the ESP inside it:
    /// one copy takes both, never what the mounts hide on the root filesystem.
    @Test func extractionCrossesMounts() throws {
        let guest = try CloudImageLayouts.ubuntu(try GuestLayout("extract-mounts"))
        let tree = try GuestDisk(path: guest.disk).guestTree()
        let out = guest.layout.dir.file("boot-copy")
        let report = try GuestExtraction(fileSystem: tree).extract("/boot", to: out)
        #expect(report.warnings.isEmpty, "\(report.warnings)")
        #expect(FileManager.default.contents(atPath: out + "/vmlinuz-\(guest.version)") == guest.kernel.data)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: out + "/vmlinuz") == "vmlinuz-\(guest.version)")
        #expect(FileManager.default.contents(atPath: out + "/efi/EFI/BOOT/BOOTX64.EFI") == Array("shim".utf8).data)
        #expect(!FileManager.default.fileExists(atPath: out + "/.keep"))
        #expect(report.files == 6)  // grub.cfg, grubenv, kernel, initrd, two EFI binaries
    }
}

extension Array where Element == UInt8 {
    var data: Data { Data(self) }
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
        let fs = try GuestDisk(path: image).guestTree()
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
