import Foundation
import GuestInspect
import Testing
import WispCore
import WispTestSupport

/// Fedora, Fedora 44, openSUSE and Arch layouts on real btrfs filesystems made at test time
/// with mkfs.btrfs --rootdir, inspected through the btrfs reader and extracted with the real
/// `wisp kernel extract`. btrfs-progs 6.2 (Debian 12) cannot create subvolumes offline
/// (`--subvol` arrived in 6.4), so the subvolumes the distributions use ("root", "boot",
/// "@") are top-level directories of the same names here: a `subvol=root` mount and a
/// directory `root` are reached the same way, by name from the top level, because the btrfs
/// reader lists nested subvolumes as directories.
@Suite struct BtrfsLayoutTests {
    static let rootUUID = LayoutTests.rootUUID
    static let bootUUID = LayoutTests.bootUUID

    /// Prefixes every guest path of `tree` with `base` (the subvolume's directory).
    static func under(_ base: String, _ tree: [String: GuestLayout.Node]) -> [String: GuestLayout.Node] {
        Dictionary(uniqueKeysWithValues: tree.map { (base + $0.key, $0.value) })
    }

    /// Runs `wisp kernel extract --json` and checks the files written are byte-identical to
    /// the guest's kernel and initrd, and the command line is `commandLine`.
    static func extractMatches(_ disk: String, out: String, kernel: [UInt8], initrd: [UInt8], commandLine: String) throws {
        let result = try LayoutTests.wisp(["kernel", "extract", disk, "-o", out, "--json"])
        #expect(result.status == 0, "\(result.stderrText)")
        let json = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        let kernelPath = try #require(json["kernelPath"] as? String)
        let initrdPath = try #require(json["initrdPath"] as? String)
        #expect(try LayoutTests.bytes(kernelPath) == kernel)
        #expect(try LayoutTests.bytes(initrdPath) == initrd)
        #expect(json["commandLine"] as? String == commandLine)
        #expect(try String(contentsOfFile: out + "/cmdline", encoding: .utf8) == commandLine + "\n")
    }

    static func espImage(_ layout: GuestLayout) throws -> String {
        try layout.vfat(["/EFI/fedora/grub.cfg": .text("search --no-floppy --fs-uuid --set=dev \(bootUUID)\nset prefix=($dev)/grub2\nexport $prefix\nconfigfile $prefix/grub.cfg\n")],
                        volumeID: "1234ABCD", label: "")
    }

    // MARK: Fedora 41: ESP, ext4 /boot with BLS, btrfs root in subvolume "root"

    @Test func fedoraExt4BootBtrfsRoot() throws {
        let layout = try GuestLayout("fedora-btrfs")
        let options = "root=UUID=\(Self.rootUUID) ro rootflags=subvol=root no_timer_check console=tty1 console=ttyS0,115200n8 $tuned_params"
        let (boot, kernels) = try LayoutTests().fedoraBootFS(layout, grubenv: [
            "saved_entry": "3f1e0c0a9f0b4d6e8e2c1a7b5d9c0e11-6.10.3-200.fc41.x86_64",
            "tuned_params": "skew_tick=1", "tuned_initrd": "", "boot_success": "0"], optionsText: options)
        let root = try layout.btrfs(Self.under("/root", [
            "/etc/os-release": GuestLayout.osRelease(id: "fedora", version: "41", name: "Fedora Linux"),
            "/etc/fstab": .text("UUID=\(Self.rootUUID) / btrfs subvol=root,compress=zstd:1 0 0\nUUID=\(Self.bootUUID) /boot ext4 defaults 1 2\nUUID=\(Self.rootUUID) /home btrfs subvol=home,compress=zstd:1 0 0\n"),
            "/boot/.keep": .text(""), "/home/.keep": .text(""),
        ]).merging(["/home/fedora/.bashrc": .text("# fedora home\n")]) { $1 }, uuid: Self.rootUUID, label: "fedora")
        let disk = try layout.gptDisk([
            .init(number: 1, image: try Self.espImage(layout), sizeMiB: 34, typeCode: "ef00", name: "EFI System Partition", guid: "aaaaaaaa-0000-4000-8000-00000000e5f0"),
            .init(number: 2, image: boot, sizeMiB: 24, typeCode: "8300", name: "boot", guid: "cccccccc-0000-4000-8000-0000000000b0"),
            .init(number: 3, image: root, sizeMiB: 128, typeCode: "8300", name: "root", guid: LayoutTests.rootPartUUID),
        ])
        let (inspector, report) = try LayoutTests().inspect(disk)
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
        try Self.extractMatches(disk, out: layout.dir.file("out"), kernel: try #require(kernels[v]),
                                initrd: Array("initramfs \(v)".utf8), commandLine: cmdline)
    }

    // MARK: Fedora 44: /boot is subvolume "boot" of the root btrfs

    @Test func fedora44BootInBtrfsSubvolume() throws {
        let layout = try GuestLayout("fedora44")
        let v = "6.17.1-300.fc44.x86_64", old = "6.16.9-200.fc44.x86_64"
        let machine = "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
        let kernel = FakeKernel.bzImage(version: v)
        let initrd = Array("initramfs \(v)\n".utf8) + [UInt8](repeating: 0x5a, count: 70_000)
        let options = "root=UUID=\(Self.rootUUID) ro rootflags=subvol=root console=ttyS0,115200n8 $tuned_params"
        var tree = Self.under("/root", [
            "/etc/os-release": GuestLayout.osRelease(id: "fedora", version: "44", name: "Fedora Linux"),
            "/etc/fstab": .text("UUID=\(Self.rootUUID) / btrfs subvol=root,compress=zstd:1 0 0\nUUID=\(Self.rootUUID) /boot btrfs subvol=boot,compress=zstd:1 0 0\nUUID=1234-ABCD /boot/efi vfat umask=0077,shortname=winnt 0 2\n"),
            "/boot/.keep": .text(""),
        ])
        // In GRUB's view the "boot" subvolume is /boot of the filesystem's top level, so BLS
        // paths on it start with /boot.
        tree["/boot/grub2/grubenv"] = .file(GuestLayout.grubenv(["saved_entry": "\(machine)-\(v)", "tuned_params": "", "boot_success": "1"]))
        tree["/boot/efi/.keep"] = .text("")
        for version in [v, old] {
            tree["/boot/loader/entries/\(machine)-\(version).conf"] = .text(
                "title Fedora Linux (\(version)) 44 (Cloud Edition)\nversion \(version)\nlinux /boot/vmlinuz-\(version)\ninitrd /boot/initramfs-\(version).img $tuned_initrd\noptions \(options)\ngrub_users $grub_users\ngrub_arg --unrestricted\ngrub_class fedora\n")
            tree["/boot/vmlinuz-\(version)"] = .file(version == v ? kernel : FakeKernel.bzImage(version: version))
            tree["/boot/initramfs-\(version).img"] = .file(version == v ? initrd : Array("old".utf8))
        }
        let root = try layout.btrfs(tree, uuid: Self.rootUUID, label: "fedora")
        let esp = try layout.vfat(["/EFI/fedora/grub.cfg": .text("search --no-floppy --fs-uuid --set=dev \(Self.rootUUID)\nset prefix=($dev)/boot/grub2\nexport $prefix\nconfigfile $prefix/grub.cfg\n")],
                                  volumeID: "1234ABCD", label: "")
        let disk = try layout.gptDisk([
            .init(number: 1, image: esp, sizeMiB: 34, typeCode: "ef00", name: "EFI System Partition", guid: "aaaaaaaa-0000-4000-8000-00000000e5f0"),
            .init(number: 2, image: root, sizeMiB: 128, typeCode: "8300", name: "root", guid: LayoutTests.rootPartUUID),
        ])
        let (inspector, report) = try LayoutTests().inspect(disk)
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
        try Self.extractMatches(disk, out: layout.dir.file("out"), kernel: kernel, initrd: initrd, commandLine: cmdline)
    }

    // MARK: openSUSE: btrfs root, /boot/vmlinuz-* symlinks into /usr/lib/modules

    @Test func openSUSEBtrfsBootSymlinks() throws {
        let layout = try GuestLayout("opensuse-btrfs")
        let v = "6.4.0-150600.23.25-default"
        let kernel = FakeKernel.bzImage(version: v)
        let initrd = Array("suse initrd \(v)\n".utf8) + [UInt8](repeating: 0x11, count: 9000)
        let cmdline = "root=UUID=\(Self.rootUUID) splash=silent mitigations=auto quiet"
        // openSUSE mounts the default subvolume (a snapshot) without subvol=; offline tools
        // cannot set one, so the OS is the top level, which is the default subvolume here.
        let root = try layout.btrfs([
            "/etc/os-release": GuestLayout.osRelease(id: "opensuse-leap", version: "15.6", name: "openSUSE Leap"),
            "/etc/fstab": .text("UUID=\(Self.rootUUID) / btrfs defaults 0 0\nUUID=\(Self.rootUUID) /.snapshots btrfs subvol=/@/.snapshots 0 0\n"),
            "/@/.snapshots/1/info.xml": .text("<snapshot/>"),
            "/usr/lib/modules/\(v)/vmlinuz": .file(kernel),
            "/boot/vmlinuz-\(v)": .symlink("../usr/lib/modules/\(v)/vmlinuz"),
            "/boot/vmlinuz": .symlink("vmlinuz-\(v)"),
            "/boot/initrd-\(v)": .file(initrd),
            "/boot/initrd": .symlink("initrd-\(v)"),
            "/boot/grub2/grub.cfg": .text("""
                set default=0
                menuentry 'openSUSE Leap 15.6' --class opensuse $menuentry_id_option 'gnulinux-simple-x' {
                	search --no-floppy --fs-uuid --set=root \(Self.rootUUID)
                	linux /boot/vmlinuz-\(v) \(cmdline)
                	initrd /boot/initrd-\(v)
                }
                """),
        ], uuid: Self.rootUUID, label: "ROOT")
        let disk = try layout.gptDisk([
            .init(number: 1, image: nil, sizeMiB: 2, typeCode: "ef02", name: "p.legacy", guid: "bbbbbbbb-0000-4000-8000-0000000000b1"),
            .init(number: 3, image: root, sizeMiB: 128, typeCode: "8300", name: "p.lxroot", guid: LayoutTests.rootPartUUID),
        ])
        let (inspector, report) = try LayoutTests().inspect(disk)
        #expect(report.filesystems.map(\.type) == ["btrfs"])
        #expect(report.osRelease?.id == "opensuse-leap")
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.source == .grubConfig)
        #expect(e.kernel == "/boot/vmlinuz-\(v)")
        #expect(e.initrds == ["/boot/initrd-\(v)"])
        #expect(e.commandLine == cmdline)
        #expect(report.kernel?.versionString?.hasPrefix(v) == true)
        #expect(try inspector.readGuestFile("/.snapshots/1/info.xml", limit: 100) == Array("<snapshot/>".utf8))
        try Self.extractMatches(disk, out: layout.dir.file("out"), kernel: kernel, initrd: initrd, commandLine: cmdline)
    }

    // MARK: Arch: btrfs, OS in "@", unversioned kernel names, grub.cfg with /@ paths

    @Test func archBtrfsUnversionedGrub() throws {
        let layout = try GuestLayout("arch-btrfs")
        let kernel = FakeKernel.bzImage(version: "6.11.6-arch1-1")
        let initrd = Array("arch initramfs\n".utf8) + [UInt8](repeating: 0xa5, count: 5000)
        let cmdline = "root=UUID=\(Self.rootUUID) rw rootflags=subvol=@ net.ifnames=0 console=tty0 console=ttyS0,115200"
        // GRUB reads the filesystem from its top level, so paths in grub.cfg carry "/@".
        let tree = Self.under("/@", [
            "/etc/os-release": GuestLayout.osRelease(id: "arch", version: "20241101", name: "Arch Linux"),
            "/etc/fstab": .text("UUID=\(Self.rootUUID) / btrfs rw,noatime,compress=zstd:3,subvol=/@ 0 0\n"),
            "/boot/vmlinuz-linux": .file(kernel),
            "/boot/initramfs-linux.img": .file(initrd),
            "/boot/initramfs-linux-fallback.img": .text("arch fallback initramfs"),
            "/boot/grub/grub.cfg": .text("""
                set default="0"
                menuentry 'Arch Linux' --class arch --class gnu-linux $menuentry_id_option 'gnulinux-simple-\(Self.rootUUID)' {
                	insmod btrfs
                	search --no-floppy --fs-uuid --set=root \(Self.rootUUID)
                	linux /@/boot/vmlinuz-linux \(cmdline)
                	initrd /@/boot/initramfs-linux.img
                }
                menuentry 'Arch Linux, with Linux linux (fallback initramfs)' --class arch $menuentry_id_option 'gnulinux-linux-fallback-\(Self.rootUUID)' {
                	search --no-floppy --fs-uuid --set=root \(Self.rootUUID)
                	linux /@/boot/vmlinuz-linux \(cmdline)
                	initrd /@/boot/initramfs-linux-fallback.img
                }
                """),
        ])
        let root = try layout.btrfs(tree, uuid: Self.rootUUID, label: "")
        let disk = try layout.gptDisk([
            .init(number: 1, image: nil, sizeMiB: 1, typeCode: "ef02", name: "", guid: "bbbbbbbb-0000-4000-8000-0000000000b1"),
            .init(number: 2, image: root, sizeMiB: 128, typeCode: "8300", name: "", guid: LayoutTests.rootPartUUID),
        ])
        let (_, report) = try LayoutTests().inspect(disk)
        #expect(report.osRelease?.id == "arch")
        #expect(report.bootEntries.count == 2)
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.source == .grubConfig)
        #expect(e.kernel == "/boot/vmlinuz-linux")
        #expect(e.initrds == ["/boot/initramfs-linux.img"])
        #expect(e.commandLine == cmdline)
        #expect(!e.commandLineIsFallback)
        try Self.extractMatches(disk, out: layout.dir.file("out"), kernel: kernel, initrd: initrd, commandLine: cmdline)
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
        #expect(report.warnings == ["fstab line 4: /srv: btrfs subvolume 999 does not exist"], "\(report.warnings)")
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
