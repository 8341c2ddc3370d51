import Foundation
import Testing
import FileSystems
import GuestInspect
import Partitions
import WispCore
import WispTestSupport

/// Live and installer ISOs made at test time by xorriso: an isolinux menu split over
/// INCLUDEd files naming its initrd in APPEND, a GRUB menu, El Torito BIOS and UEFI entries
/// (the EFI image a FAT made by mkfs.vfat) and an isohybrid MBR whose first entry is
/// "empty", as Debian's ISOs have. Inspection finds the kernel, initrd and command line;
/// `image info`'s report names the volume and lists the boot catalog.
@Suite struct LiveISOTests {
    static func makeISO(grub: Bool, hybrid: Bool, in dir: TemporaryDirectory) throws -> String {
        let tree = dir.file("tree")
        let fm = FileManager.default
        for sub in ["live", "isolinux", "boot/grub"] { try fm.createDirectory(atPath: "\(tree)/\(sub)", withIntermediateDirectories: true) }
        func write(_ path: String, _ bytes: [UInt8]) throws { try Data(bytes).write(to: URL(fileURLWithPath: "\(tree)/\(path)")) }
        try write("live/vmlinuz", FakeKernel.bzImage(version: "6.1.0-21-amd64 (debian-kernel@lists.debian.org)"))
        try write("live/initrd.img", Array("initramfs".utf8))
        try write("isolinux/isolinux.bin", [UInt8](repeating: 0x90, count: 2048))
        try write("isolinux/isolinux.cfg", Array("path\ninclude menu.cfg\ndefault vesamenu.c32\n".utf8))
        try write("isolinux/menu.cfg", Array("menu title Live\ninclude live.cfg\n".utf8))
        try write("isolinux/live.cfg", Array("""
            label live-amd64
            \tmenu label ^Live system (amd64)
            \tmenu default
            \tlinux /live/vmlinuz
            \tappend initrd=/live/initrd.img boot=live components quiet splash

            """.utf8))
        if grub {
            try write("boot/grub/grub.cfg", Array("""
                set default=0
                set timeout=5
                menuentry "Live system (GRUB)" {
                    linux /live/vmlinuz boot=live components console=ttyS0
                    initrd /live/initrd.img
                }

                """.utf8))
        }
        let efi = dir.file("efi.img")
        try ToolRunner.check("mkfs.vfat", ["-C", "-n", "ESPIMG", efi, "2048"])
        try fm.copyItem(atPath: efi, toPath: "\(tree)/boot/efi.img")
        var arguments = ["-as", "mkisofs", "-R", "-J", "-V", "WISP_LIVE",
                         "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4",
                         "-eltorito-alt-boot", "-e", "boot/efi.img", "-no-emul-boot"]
        if hybrid {
            // Any 432 bytes serve as the MBR boot code; the table is xorriso's own.
            let mbr = dir.file("mbr.bin")
            try Data(count: 432).write(to: URL(fileURLWithPath: mbr))
            arguments += ["-isohybrid-mbr", mbr, "-isohybrid-gpt-basdat"]
        }
        let iso = dir.file("live.iso")
        try ToolRunner.check("xorriso", arguments + ["-o", iso, tree])
        return iso
    }

    @Test func isolinuxMenuOfALiveISO() throws {
        let dir = try TemporaryDirectory("live-iso")
        let iso = try Self.makeISO(grub: false, hybrid: false, in: dir)
        let disk = try GuestDisk(path: iso)
        #expect(disk.table.scheme == .none)
        #expect(disk.mediumVolume?.fileSystem?.label == "WISP_LIVE")
        let inspector = try GuestInspector(guestDisk: disk)
        #expect(inspector.isLiveMedium)
        let plan = try inspector.bootPlan()
        #expect(plan.source == .extlinux)
        #expect(plan.kernelPath == "/live/vmlinuz")
        #expect(plan.initrdPaths == ["/live/initrd.img"])
        #expect(plan.commandLine == "boot=live components quiet splash")
        #expect(plan.architecture == .x86_64)
        #expect(try inspector.readGuestFile("/live/initrd.img", limit: 1 << 20) == Array("initramfs".utf8))
        // Through the FileSystem view `wisp fs` uses.
        let tree = try disk.guestTree()
        #expect(try tree.list(directory: tree.resolve("/live").inode).map(\.name).sorted() == ["initrd.img", "vmlinuz"])
    }

    @Test func isohybridImageWithGrubElToritoAndEFIImage() throws {
        let dir = try TemporaryDirectory("live-iso-hybrid")
        let iso = try Self.makeISO(grub: true, hybrid: true, in: dir)
        let disk = try GuestDisk(path: iso)
        // Judge: sfdisk sees the hybrid MBR; its first entry (type 0) is skipped, the ISO is read whole.
        let sfdisk = try ToolRunner.check("sfdisk", ["-d", iso]).stdoutText
        #expect(sfdisk.contains("type=ef"))
        #expect(disk.table.scheme != .none)
        #expect(disk.volumes.first?.partition.number == 0 && disk.volumes.first?.kind == .iso9660)
        #expect(disk.volumes.contains { $0.kind == .vfat }, "the EFI partition of the hybrid table")
        let plan = try GuestInspector(guestDisk: disk).bootPlan()
        #expect(plan.source == .grubConfig)
        #expect(plan.kernelPath == "/live/vmlinuz")
        #expect(plan.initrdPaths == ["/live/initrd.img"])
        #expect(plan.commandLine == "boot=live components console=ttyS0")

        let report = try #require(disk.report.iso)
        #expect(report.volumeID == "WISP_LIVE")
        #expect(report.names == "Rock Ridge" && report.hasJoliet)
        #expect(report.hybridPartitionTable == disk.table.scheme.rawValue)
        let catalog = try #require(report.bootCatalog)
        // Judge: xorriso's own report of the catalog.
        let judge = try ToolRunner.check("xorriso", ["-indev", iso, "-report_el_torito", "plain"]).stdoutText
        #expect(catalog.entries.map(\.platform) == [.bios, .uefi])
        for entry in catalog.entries {
            #expect(judge.contains(" \(entry.loadSector)"), "xorriso reports:\n\(judge)")
        }
        #expect(catalog.entries[0].sectorCount == 4 && catalog.entries[0].bootable)
        #expect(report.efiImageFileSystem == "vfat" && report.efiImageLabel == "ESPIMG")
    }

    /// An ISO whose only boot configuration is inside its El Torito EFI image (a FAT made by
    /// mkfs.vfat, files put in by mtools), or systemd-boot entries at the medium's root.
    static func makeUEFIOnlyISO(efiFiles: [String: String], mediumFiles: [String: String], in dir: TemporaryDirectory) throws -> String {
        let fm = FileManager.default
        let tree = dir.file("tree")
        try fm.createDirectory(atPath: "\(tree)/live", withIntermediateDirectories: true)
        try Data(FakeKernel.bzImage(version: "6.1.0-21-amd64 (debian-kernel@lists.debian.org)")).write(to: URL(fileURLWithPath: "\(tree)/live/vmlinuz"))
        try Data("initramfs".utf8).write(to: URL(fileURLWithPath: "\(tree)/live/initrd.img"))
        for (path, text) in mediumFiles {
            try fm.createDirectory(atPath: ("\(tree)/\(path)" as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: "\(tree)/\(path)"))
        }
        let efi = dir.file("efi.img")
        try ToolRunner.check("mkfs.vfat", ["-C", "-n", "ESPIMG", efi, "2048"])
        let mtools = ["MTOOLS_SKIP_CHECK": "1"]
        var made: Set<String> = []
        for (path, text) in efiFiles.sorted(by: { $0.key < $1.key }) {
            var parent = ""
            for component in path.split(separator: "/").dropLast() {
                parent += "/" + component
                if made.insert(parent).inserted { try ToolRunner.check("mmd", ["-i", efi, "::" + parent], environment: mtools) }
            }
            let local = dir.file("efi-file")
            try Data(text.utf8).write(to: URL(fileURLWithPath: local))
            try ToolRunner.check("mcopy", ["-i", efi, local, "::/" + path], environment: mtools)
        }
        try fm.copyItem(atPath: efi, toPath: "\(tree)/efi.img")
        let iso = dir.file("uefi.iso")
        try ToolRunner.check("xorriso", ["-as", "mkisofs", "-R", "-J", "-V", "WISP_UEFI", "-c", "boot.cat",
                                         "-e", "efi.img", "-no-emul-boot", "-o", iso, tree])
        return iso
    }

    @Test func grubMenuInsideTheElToritoEFIImage() throws {
        let dir = try TemporaryDirectory("live-iso-efi-grub")
        // Fedora's layout: GRUB's menu beside its binary in the EFI image, paths on the CD.
        let iso = try Self.makeUEFIOnlyISO(efiFiles: ["EFI/BOOT/grub.cfg": """
            search --no-floppy --set=root -l 'WISP_UEFI'
            set default="0"
            menuentry 'Start the live system' --class fedora {
                linux /live/vmlinuz root=live:CDLABEL=WISP_UEFI rd.live.image quiet
                initrd /live/initrd.img
            }

            """], mediumFiles: [:], in: dir)
        // Judge: mtools reads the menu back from the EFI image xorriso embedded.
        let efi = dir.file("efi.img")
        #expect(try ToolRunner.check("mtype", ["-i", efi, "::/EFI/BOOT/grub.cfg"], environment: ["MTOOLS_SKIP_CHECK": "1"]).stdoutText.contains("rd.live.image"))
        let inspector = try GuestInspector(guestDisk: try GuestDisk(path: iso))
        #expect(inspector.isLiveMedium)
        let plan = try inspector.bootPlan()
        #expect(plan.source == .grubConfig)
        #expect(plan.kernelPath == "/live/vmlinuz")
        #expect(plan.initrdPaths == ["/live/initrd.img"])
        #expect(plan.commandLine == "root=live:CDLABEL=WISP_UEFI rd.live.image quiet")
        let report = try inspector.inspect()
        #expect(report.bootEntries.first?.configPath == "[El Torito EFI image]/EFI/BOOT/grub.cfg")
        #expect(try inspector.readGuestFile(plan.kernelPath, limit: 1 << 20).count == 16 << 10)
    }

    @Test func systemdBootEntriesOnTheMediumAndInTheEFIImage() throws {
        let entry = """
            title    Wisp install medium (x86_64, UEFI)
            sort-key 01
            linux    /live/vmlinuz
            initrd   /live/initrd.img
            options  archisobasedir=arch archisosearchuuid=2026-12-07 cow_spacesize=1G

            """
        // archiso: the entries at the medium's root.
        let onMedium = try TemporaryDirectory("live-iso-loader-medium")
        let plan = try GuestInspector(guestDisk: try GuestDisk(path: try Self.makeUEFIOnlyISO(
            efiFiles: [:], mediumFiles: ["loader/entries/01-wisp-x86_64-linux.conf": entry, "loader/loader.conf": "timeout 15\n"], in: onMedium))).bootPlan()
        #expect(plan.source == .bls)
        #expect(plan.kernelPath == "/live/vmlinuz")
        #expect(plan.initrdPaths == ["/live/initrd.img"])
        #expect(plan.commandLine == "archisobasedir=arch archisosearchuuid=2026-12-07 cow_spacesize=1G")
        #expect(plan.entryID == "01-wisp-x86_64-linux")

        // The same entries only inside the El Torito EFI image.
        let inImage = try TemporaryDirectory("live-iso-loader-efi")
        let inspector = try GuestInspector(guestDisk: try GuestDisk(path: try Self.makeUEFIOnlyISO(
            efiFiles: ["loader/entries/01-wisp-x86_64-linux.conf": entry], mediumFiles: [:], in: inImage)))
        let fromImage = try inspector.bootPlan()
        #expect(fromImage.source == .bls)
        #expect(fromImage.kernelPath == "/live/vmlinuz")
        #expect(fromImage.commandLine == plan.commandLine)
        #expect(try inspector.inspect().bootEntries.first?.configPath == "[El Torito EFI image]/loader/entries/01-wisp-x86_64-linux.conf")
    }
}
