import Foundation
import GuestInspect
import Testing
import WispCore
import WispTestSupport

/// Fedora, Fedora 44, openSUSE and Arch layouts (CloudImageLayouts) on real btrfs
/// filesystems made at test time with mkfs.btrfs --rootdir, inspected through the btrfs
/// reader (wispTests' KernelCommandTests extract them with the `wisp` binary). btrfs-progs
/// 6.2 (Debian 12) cannot create subvolumes offline (`--subvol` arrived in 6.4), so there
/// the subvolumes the distributions use ("root", "boot", "@") are top-level directories of
/// the same names: a `subvol=root` mount and a directory `root` are reached the same way, by
/// name from the top level, because the btrfs reader lists nested subvolumes as directories.
@Suite struct BtrfsLayoutTests {
    static let rootUUID = LayoutTests.rootUUID
    static let bootUUID = LayoutTests.bootUUID

    /// The default entry's kernel and initrd, read through the guest view, are the files
    /// the layout put there.
    static func defaultFilesMatch(_ inspector: GuestInspector, _ report: GuestReport, _ guest: CloudImageLayouts.Guest) throws {
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(try inspector.readGuestFile(e.kernel, limit: 1 << 20) == guest.kernel)
        #expect(try inspector.readGuestFile(try #require(e.initrds.first), limit: 1 << 20) == guest.initrd)
        #expect(e.commandLine == guest.commandLine)
    }

    // MARK: Fedora 41: ESP, ext4 /boot with BLS, btrfs root in subvolume "root"

    @Test func fedoraExt4BootBtrfsRoot() throws {
        let guest = try CloudImageLayouts.fedoraBtrfs(try GuestLayout("fedora-btrfs"))
        let (inspector, report) = try LayoutTests().inspect(guest.disk)
        #expect(report.filesystems.map(\.type) == ["vfat", "ext4", "btrfs"])
        #expect(report.rootPartition == 3)
        #expect(report.osRelease?.versionID == "41")
        #expect(report.warnings.isEmpty, "\(report.warnings)")
        let v = "6.10.3-200.fc41.x86_64"
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.source == .bls)
        #expect(e.version == v)
        #expect(e.kernel == "/boot/vmlinuz-\(v)")
        #expect(e.initrds == ["/boot/initramfs-\(v).img"])
        let cmdline = "root=UUID=\(Self.rootUUID) ro rootflags=subvol=root no_timer_check console=tty1 console=ttyS0,115200n8 skew_tick=1"
        #expect(e.commandLine == cmdline)
        #expect(report.defaultReason.contains("saved_entry"))
        // subvol=home mounts the top-level "home" at /home.
        #expect(try inspector.readGuestFile("/home/fedora/.bashrc", limit: 100) == Array("# fedora home\n".utf8))
        try Self.defaultFilesMatch(inspector, report, guest)
    }

    // MARK: Fedora 44: /boot is subvolume "boot" of the root btrfs

    @Test func fedora44BootInBtrfsSubvolume() throws {
        let guest = try CloudImageLayouts.fedora44Btrfs(try GuestLayout("fedora44"))
        let v = guest.version, old = "6.16.9-200.fc44.x86_64"
        let (inspector, report) = try LayoutTests().inspect(guest.disk)
        #expect(report.rootPartition == 2)
        #expect(report.osRelease?.versionID == "44")
        #expect(report.warnings.isEmpty, "\(report.warnings)")
        #expect(report.bootEntries.map(\.version) == [v, old])
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.source == .bls)
        #expect(e.version == v)
        #expect(e.kernel == "/boot/vmlinuz-\(v)")
        #expect(e.initrds == ["/boot/initramfs-\(v).img"])
        let cmdline = "root=UUID=\(Self.rootUUID) ro rootflags=subvol=root console=ttyS0,115200n8"
        #expect(e.commandLine == cmdline)
        #expect(try inspector.readGuestFile("/boot/efi/EFI/fedora/grub.cfg", limit: 4096).count > 0)
        try Self.defaultFilesMatch(inspector, report, guest)
    }

    // MARK: openSUSE: btrfs root, /boot/vmlinuz-* symlinks into /usr/lib/modules

    @Test func openSUSEBtrfsBootSymlinks() throws {
        let guest = try CloudImageLayouts.openSUSEBtrfs(try GuestLayout("opensuse-btrfs"))
        let v = guest.version
        let (inspector, report) = try LayoutTests().inspect(guest.disk)
        #expect(report.filesystems.map(\.type) == ["btrfs"])
        #expect(report.osRelease?.id == "opensuse-leap")
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.source == .grubConfig)
        #expect(e.kernel == "/boot/vmlinuz-\(v)")
        #expect(e.initrds == ["/boot/initrd-\(v)"])
        #expect(e.commandLine == "root=UUID=\(Self.rootUUID) splash=silent mitigations=auto quiet")
        #expect(report.kernel?.versionString?.hasPrefix(v) == true)
        #expect(try inspector.readGuestFile("/.snapshots/1/info.xml", limit: 100) == Array("<snapshot/>".utf8))
        try Self.defaultFilesMatch(inspector, report, guest)
    }

    // MARK: Arch: btrfs, OS in "@", unversioned kernel names, grub.cfg with /@ paths

    @Test func archBtrfsUnversionedGrub() throws {
        let guest = try CloudImageLayouts.archBtrfs(try GuestLayout("arch-btrfs"))
        let (inspector, report) = try LayoutTests().inspect(guest.disk)
        #expect(report.osRelease?.id == "arch")
        #expect(report.bootEntries.count == 2)
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.source == .grubConfig)
        #expect(e.kernel == "/boot/vmlinuz-linux")
        #expect(e.initrds == ["/boot/initramfs-linux.img"])
        #expect(e.commandLine == "root=UUID=\(Self.rootUUID) rw rootflags=subvol=@ net.ifnames=0 console=tty0 console=ttyS0,115200")
        #expect(!e.commandLineIsFallback)
        try Self.defaultFilesMatch(inspector, report, guest)
    }

    // MARK: a real subvolume: btrfs-convert's ext2_saved

    @Test func subvolMountOnARealSubvolume() throws {
        // btrfs-convert is the one offline tool that makes a real subvolume (ext2_saved,
        // holding the original ext4 as a file named "image"): fstab's subvol= reaches it
        // like any other subvolume, and the OS beside it is the top level.
        // (btrfs-convert needs room for its metadata chunks: 256 MiB, sparse.)
        let layout = try GuestLayout("btrfs-convert")
        let kernel = FakeKernel.bzImage(version: "6.1.0-28-cloud-amd64")
        let tree = try layout.materialize([
            "/etc/os-release": GuestLayout.osRelease(id: "debian", version: "12", name: "Debian GNU/Linux"),
            "/etc/fstab": .text("UUID=\(Self.rootUUID) / btrfs defaults 0 0\nUUID=\(Self.rootUUID) /var/lib/saved btrfs subvol=ext2_saved,ro 0 0\nUUID=\(Self.rootUUID) /var/lib/byid btrfs ro,subvolid=256 0 0\nUUID=\(Self.rootUUID) /srv btrfs subvolid=999 0 0\n"),
            "/var/lib/saved/.keep": .text(""), "/var/lib/byid/.keep": .text(""),
            "/boot/vmlinuz-6.1.0-28-cloud-amd64": .file(kernel),
            "/boot/initrd.img-6.1.0-28-cloud-amd64": .text("initrd"),
        ])
        let image = layout.dir.file("converted.img")
        try ToolRunner.check("truncate", ["-s", "256M", image])
        try ToolRunner.check("mkfs.ext4", ["-q", "-F", "-b", "4096", "-d", tree, image])
        try ToolRunner.check("btrfs-convert", ["--uuid", Self.rootUUID, image])
        let disk = try layout.gptDisk([.init(number: 1, image: image, sizeMiB: 256, typeCode: "8300", name: "root", guid: LayoutTests.rootPartUUID)])
        let (inspector, report) = try LayoutTests().inspect(disk)
        #expect(report.filesystems.map(\.type) == ["btrfs"])
        // A subvolid= naming no subvolume is a warning, and nothing is mounted there.
        // (The reason is the reader's whole sentence, naming the partition.)
        #expect(report.warnings == ["fstab line 4: /srv: \(disk) partition 1 (offsets from its start, disk byte 1048576): btrfs subvolume 999 does not exist"], "\(report.warnings)")
        let view = try #require(inspector.view)
        let saved = try view.list("/var/lib/saved").map(\.name)
        #expect(saved == ["image"], "\(saved)")
        #expect(try view.resolve("/var/lib/saved").mount.sourcePath == "/ext2_saved")
        // subvolid= (256, the first subvolume id) has no directory to follow: the mount opens
        // the subvolume by id with its own reader.
        #expect(try view.list("/var/lib/byid").map(\.name) == ["image"])
        #expect(try view.resolve("/var/lib/byid").mount.sourcePath == "/ext2_saved")
        #expect(try inspector.guestFileSize("/var/lib/saved/image") == 256 << 20)
        #expect(view.mounts.map(\.mountPoint).sorted() == ["/", "/var/lib/byid", "/var/lib/saved"])
        // The saved image is the original ext4, byte for byte: its superblock magic.
        #expect(try inspector.readGuestFile("/var/lib/saved/image", offset: 1024 + 56, count: 2) == [0x53, 0xef])
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.kernel == "/boot/vmlinuz-6.1.0-28-cloud-amd64")
        #expect(try inspector.readGuestFile(e.kernel, limit: 1 << 20) == kernel)
    }
}
