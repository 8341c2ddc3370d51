import Foundation
import GuestInspect
import Partitions
import Testing
import WispCore
import WispTestSupport

/// Every major cloud image layout (CloudImageLayouts), built small at test time with the
/// real mkfs tools and read back through Wisp's readers. wispTests run the `wisp` binary
/// on the same layouts.
@Suite struct LayoutTests {
    static let rootUUID = CloudImageLayouts.rootUUID
    static let bootUUID = CloudImageLayouts.bootUUID
    static let rootPartUUID = CloudImageLayouts.rootPartUUID

    func inspect(_ disk: String) throws -> (GuestInspector, GuestReport) {
        let inspector = try GuestInspector(disk: try FileBlockDevice(path: disk))
        return (inspector, try inspector.inspect())
    }

    // MARK: Debian genericcloud

    @Test func debianGenericCloud() throws {
        let layout = try GuestLayout("debian")
        let disk = try CloudImageLayouts.debianDisk(layout)
        let (_, report) = try inspect(disk)
        #expect(report.partitionScheme == .gpt)
        #expect(report.partitions.map(\.number).sorted() == [1, 14, 15])
        let rootFS = try #require(report.filesystems.first { $0.partition == 1 })
        #expect(rootFS.type == "ext4")
        #expect(rootFS.uuid == Self.rootUUID)
        #expect(report.filesystems.first { $0.partition == 15 }?.type == "vfat")
        #expect(report.rootPartition == 1)
        #expect(report.osRelease?.id == "debian")
        #expect(report.osRelease?.versionID == "12")
        #expect(report.fstab.map(\.mountPoint) == ["/", "/boot/efi"])
        #expect(report.bootEntries.count == 4)
        let d = try #require(report.defaultEntry)
        let e = report.bootEntries[d]
        #expect(d == 0)
        #expect(e.source == .grubConfig)
        #expect(e.kernel == "/boot/vmlinuz-6.1.0-28-cloud-amd64")
        #expect(e.initrds == ["/boot/initrd.img-6.1.0-28-cloud-amd64"])
        #expect(e.commandLine == "root=PARTUUID=1d5fa5a4-9b3c-4d7a-8f2e-3c4b5a697887 ro console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200 consoleblank=0")
        #expect(report.bootEntries[3].isRescue)
        let k = try #require(report.kernel)
        #expect(k.architecture == "x86_64")
        #expect(k.format == "bzImage")
        #expect(k.versionString?.hasPrefix("6.1.0-28-cloud-amd64") == true)
        #expect(k.qemuDirectBoot)
    }

    // MARK: Ubuntu

    @Test func ubuntuSeparateBootRecoveryNeverDefault() throws {
        let guest = try CloudImageLayouts.ubuntu(try GuestLayout("ubuntu"))
        let disk = guest.disk
        let kernel = guest.kernel
        let (inspector, report) = try inspect(disk)
        #expect(report.filesystems.first { $0.partition == 16 }?.mountPoint == "/boot")
        #expect(report.filesystems.first { $0.partition == 15 }?.mountPoint == "/boot/efi")
        #expect(report.warnings.isEmpty, "\(report.warnings)")
        let d = try #require(report.defaultEntry)
        let e = report.bootEntries[d]
        #expect(e.title == "Ubuntu")
        #expect(report.defaultReason.contains("rescue/recovery"))
        #expect(e.kernel == "/boot/vmlinuz-6.8.0-49-generic")
        #expect(e.commandLine == "root=LABEL=cloudimg-rootfs ro console=tty1 console=ttyS0 vt.handoff=7")
        #expect(try inspector.readGuestFile(e.kernel, limit: 1 << 20) == kernel)
        #expect(report.bootEntries[1].isRescue)
        #expect(report.bootEntries[1].submenu == ["Advanced options for Ubuntu"])
    }

    // MARK: Fedora / EL BLS

    static func blsEntry(_ version: String, options: String, extra: String = "") -> String {
        CloudImageLayouts.blsEntry(version, options: options, extra: extra)
    }

    func fedoraBootFS(_ layout: GuestLayout, grubenv: [String: String], optionsText: String, withGrubCfg: Bool = true) throws -> (String, [String: [UInt8]]) {
        try CloudImageLayouts.fedoraBootFS(layout, grubenv: grubenv, optionsText: optionsText, withGrubCfg: withGrubCfg)
    }

    func fedoraDisk(_ layout: GuestLayout, boot: String, root: String) throws -> String {
        try layout.gptDisk([
            .init(number: 1, image: nil, sizeMiB: 2, typeCode: "ef02", name: "bios", guid: "bbbbbbbb-0000-4000-8000-0000000000b1"),
            .init(number: 2, image: boot, sizeMiB: 24, typeCode: "ea00", name: "boot", guid: "cccccccc-0000-4000-8000-0000000000b0"),
            .init(number: 3, image: root, sizeMiB: root.hasSuffix(".btrfs") ? 128 : (root.hasSuffix(".xfs") ? 300 : 24), typeCode: "8300", name: "root", guid: Self.rootPartUUID),
        ])
    }

    static func fedoraRootTree(fstabRoot: String) -> [String: GuestLayout.Node] {
        ["/etc/os-release": GuestLayout.osRelease(id: "fedora", version: "41", name: "Fedora Linux"),
         "/etc/fstab": .text("UUID=\(rootUUID) / \(fstabRoot) 0 0\nUUID=\(bootUUID) /boot ext4 defaults 1 2\n"),
         "/boot/.keep": .text("")]
    }

    @Test func fedoraBLSWithTunedVariablesAndSavedEntry() throws {
        let layout = try GuestLayout("fedora")
        let (boot, kernels) = try fedoraBootFS(layout, grubenv: [
            "saved_entry": "3f1e0c0a9f0b4d6e8e2c1a7b5d9c0e11-6.10.3-200.fc41.x86_64",
            "tuned_params": "skew_tick=1 tsc=reliable", "tuned_initrd": "", "boot_success": "0"],
            optionsText: "root=UUID=\(Self.rootUUID) ro rootflags=subvol=root no_timer_check console=tty1 console=ttyS0,115200n8 $tuned_params")
        // Fedora Cloud's root is btrfs (BtrfsLayoutTests); this variant is ext4.
        let root = try layout.ext4(Self.fedoraRootTree(fstabRoot: "ext4 defaults"), uuid: Self.rootUUID, label: "fedora")
        let (inspector, report) = try inspect(try fedoraDisk(layout, boot: boot, root: root))
        // BLS order: version descending (6.11 > 6.10 > 6.9), rescue last.
        #expect(report.bootEntries.map(\.version) == ["6.11.4-301.fc41.x86_64", "6.10.3-200.fc41.x86_64", "6.9.12-200.fc41.x86_64", "0-rescue-3f1e0c0a9f0b4d6e8e2c1a7b5d9c0e11"])
        let d = try #require(report.defaultEntry)
        #expect(d == 1)
        let e = report.bootEntries[d]
        #expect(e.source == .bls)
        #expect(e.kernel == "/boot/vmlinuz-6.10.3-200.fc41.x86_64")
        #expect(e.initrds == ["/boot/initramfs-6.10.3-200.fc41.x86_64.img"])
        #expect(e.commandLine == "root=UUID=\(Self.rootUUID) ro rootflags=subvol=root no_timer_check console=tty1 console=ttyS0,115200n8 skew_tick=1 tsc=reliable")
        #expect(report.defaultReason.contains("saved_entry"))
        #expect(try inspector.readGuestFile(e.kernel, limit: 1 << 20) == kernels["6.10.3-200.fc41.x86_64"])
    }

    @Test func blsWithoutGrubCfgUsesGrubenvAndOrder() throws {
        let layout = try GuestLayout("bls-only")
        let (boot, _) = try fedoraBootFS(layout, grubenv: ["kernelopts": "root=UUID=\(Self.rootUUID) ro crashkernel=auto"],
                                         optionsText: "$kernelopts", withGrubCfg: false)
        let root = try layout.ext4(Self.fedoraRootTree(fstabRoot: "ext4 defaults"), uuid: Self.rootUUID, label: "root")
        let (_, report) = try inspect(try fedoraDisk(layout, boot: boot, root: root))
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.version == "6.11.4-301.fc41.x86_64")
        #expect(e.commandLine == "root=UUID=\(Self.rootUUID) ro crashkernel=auto")
        #expect(report.defaultReason.contains("sort order"))
    }

    @Test func el9KernelOptsFromGrubenv() throws {
        let layout = try GuestLayout("el9")
        let (boot, _) = try fedoraBootFS(layout, grubenv: ["saved_entry": "3f1e0c0a9f0b4d6e8e2c1a7b5d9c0e11-6.9.12-200.fc41.x86_64",
                                                           "kernelopts": "root=UUID=\(Self.rootUUID) ro console=ttyS0,115200n8 no_timer_check net.ifnames=0"],
                                         optionsText: "$kernelopts $tuned_params")
        // Alma/Rocky use XFS (el9OnXFSWithKernelOpts); this ext4 variant checks $kernelopts expansion.
        let root = try layout.ext4(Self.fedoraRootTree(fstabRoot: "xfs defaults"), uuid: Self.rootUUID, label: "root")
        let (_, report) = try inspect(try fedoraDisk(layout, boot: boot, root: root))
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.version == "6.9.12-200.fc41.x86_64")
        #expect(e.commandLine == "root=UUID=\(Self.rootUUID) ro console=ttyS0,115200n8 no_timer_check net.ifnames=0")
    }

    @Test func el9OnXFSWithKernelOpts() throws {
        // Alma/Rocky 9 GenericCloud: XFS /boot with BLS entries whose options are
        // $kernelopts from /boot/grub2/grubenv, XFS root.
        let guest = try CloudImageLayouts.el9XFS(try GuestLayout("el9-xfs"))
        let disk = guest.disk, v = guest.version, kernel = guest.kernel
        let (inspector, report) = try inspect(disk)
        #expect(report.filesystems.map(\.type) == ["xfs", "xfs"])
        #expect(report.osRelease?.id == "almalinux")
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.version == v)
        #expect(e.kernel == "/boot/vmlinuz-\(v)")
        #expect(e.initrds == ["/boot/initramfs-\(v).img"])
        #expect(e.commandLine == "root=UUID=\(Self.rootUUID) console=tty0 console=ttyS0,115200n8 no_timer_check net.ifnames=0")
        #expect(try inspector.readGuestFile(e.kernel, limit: 1 << 20) == kernel)
        #expect(report.defaultReason.contains("saved_entry"))
        #expect(e.commandLine == guest.commandLine)
        #expect(try inspector.readGuestFile(e.initrds[0], limit: 1 << 20) == guest.initrd)
    }

    @Test func encryptedRootIsNamed() throws {
        let layout = try GuestLayout("luks")
        let luks = layout.dir.file("root.luks")
        try ToolRunner.check("truncate", ["-s", "20M", luks])
        try ToolRunner.check("cryptsetup", ["luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2",
                                            "--pbkdf-force-iterations", "1000", "--key-file", "-", luks], input: Data("pw".utf8))
        let esp = try layout.vfat([:], volumeID: "1234ABCD", label: "ESP")
        let disk = try layout.gptDisk([
            .init(number: 1, image: esp, sizeMiB: 34, typeCode: "ef00", name: "esp", guid: "aaaaaaaa-0000-4000-8000-00000000e5f0"),
            .init(number: 2, image: luks, sizeMiB: 20, typeCode: "8309", name: "root", guid: Self.rootPartUUID),
        ])
        #expect { try inspect(disk) } throws: {
            "\($0)".hasSuffix("no filesystem holds an OS root (/etc/os-release): partition 2 is LUKS-encrypted (not supported)")
        }
    }

    @Test func fstabDeviceFormsAssembleTheMountView() throws {
        // UUID=, LABEL=, PARTUUID=, PARTLABEL=, /dev/disk/by-*, and a kernel device name.
        let layout = try GuestLayout("fstab")
        let fs = { (uuid: String, label: String, file: String) in
            try layout.ext4(["/\(file)": .text("on \(label)")], uuid: uuid, label: label, sizeMiB: 8)
        }
        let root = try layout.ext4([
            "/etc/os-release": GuestLayout.osRelease(id: "debian", version: "12", name: "Debian GNU/Linux"),
            "/etc/fstab": .text("""
                PARTUUID=\(Self.rootPartUUID) / ext4 defaults 0 1
                PARTLABEL=data /srv/data ext4 defaults 0 2
                /dev/vda3 /srv/three ext4 defaults 0 2
                /dev/disk/by-uuid/44444444-0000-4000-8000-000000000004 /srv/four ext4 defaults 0 2
                LABEL=five /srv/five ext4 defaults 0 2
                UUID=66666666-0000-4000-8000-000000000006 /srv/six ext4 noauto,nofail 0 2
                tmpfs /tmp tmpfs defaults 0 0
                /swapfile none swap sw 0 0

                """),
            "/srv/data/.keep": .text(""), "/srv/three/.keep": .text(""), "/srv/four/.keep": .text(""),
            "/srv/five/.keep": .text(""), "/srv/link": .symlink("/srv/five/f5"),
        ], uuid: Self.rootUUID, label: "root")
        let disk = try layout.gptDisk([
            .init(number: 1, image: root, sizeMiB: 24, typeCode: "8300", name: "root", guid: Self.rootPartUUID),
            .init(number: 2, image: try fs("22222222-0000-4000-8000-000000000002", "two", "f2"), sizeMiB: 8, typeCode: "8300", name: "data", guid: "22222222-0000-4000-8000-0000000000a2"),
            .init(number: 3, image: try fs("33333333-0000-4000-8000-000000000003", "three", "f3"), sizeMiB: 8, typeCode: "8300", name: "x", guid: "33333333-0000-4000-8000-0000000000a3"),
            .init(number: 4, image: try fs("44444444-0000-4000-8000-000000000004", "four", "f4"), sizeMiB: 8, typeCode: "8300", name: "y", guid: "44444444-0000-4000-8000-0000000000a4"),
            .init(number: 5, image: try fs("55555555-0000-4000-8000-000000000005", "five", "f5"), sizeMiB: 8, typeCode: "8300", name: "z", guid: "55555555-0000-4000-8000-0000000000a5"),
        ])
        let inspector = try GuestInspector(disk: try FileBlockDevice(path: disk))
        let report = try inspector.inspect()
        let points = Dictionary(uniqueKeysWithValues: report.filesystems.map { ($0.partition, $0.mountPoint ?? "-") })
        #expect(points == [1: "/", 2: "/srv/data", 3: "/srv/three", 4: "/srv/four", 5: "/srv/five"])
        #expect(try inspector.readGuestFile("/srv/three/f3", limit: 100) == Array("on three".utf8))
        // An absolute symlink on the root crossing into a mounted filesystem.
        #expect(try inspector.readGuestFile("/srv/link", limit: 100) == Array("on five".utf8))
        // nofail entries that match nothing are not warnings; tmpfs and swap are skipped.
        #expect(report.warnings.isEmpty, "\(report.warnings)")
        // A partition the guest does not mount, in GRUB notation.
        #expect(try inspector.readGuestFile("(hd0,gpt2)/f2", limit: 100) == Array("on two".utf8))
        #expect { try inspector.readGuestFile("(hd0,gpt9)/x", limit: 100) } throws: { "\($0)".contains("(hd0,gpt9)/x: no such partition") }
    }

    @Test func subvolumeLayoutThroughSubvolMounts() throws {
        // Fedora 41-44's btrfs layout (OS in subvolume "root", /boot and /home as subvolumes
        // "boot" and "home" of the same filesystem), with directories standing in for the
        // subvolumes on ext4: the mount view follows subvol= by directory, whatever the
        // filesystem (BtrfsLayoutTests runs the same on btrfs).
        let layout = try GuestLayout("subvol")
        let v = "6.17.1-300.fc44.x86_64"
        let kernel = FakeKernel.bzImage(version: v)
        let fs = try layout.ext4([
            "/root/etc/os-release": GuestLayout.osRelease(id: "fedora", version: "44", name: "Fedora Linux"),
            "/root/etc/fstab": .text("UUID=\(Self.rootUUID) / btrfs subvol=root,compress=zstd:1 0 0\nUUID=\(Self.rootUUID) /boot btrfs subvol=boot 0 0\nUUID=\(Self.rootUUID) /home btrfs subvol=home 0 0\n"),
            "/root/boot/.keep": .text(""), "/root/home/.keep": .text(""),
            "/boot/loader/entries/m-\(v).conf": .text(Self.blsEntry(v, options: "root=UUID=\(Self.rootUUID) ro rootflags=subvol=root")),
            "/boot/vmlinuz-\(v)": .file(kernel),
            "/boot/initramfs-\(v).img": .text("initramfs"),
            "/home/fedora/notes": .text("in home"),
        ], uuid: Self.rootUUID, label: "fedora")
        let disk = try layout.gptDisk([.init(number: 2, image: fs, sizeMiB: 24, typeCode: "8300", name: "root", guid: Self.rootPartUUID)])
        let (inspector, report) = try inspect(disk)
        #expect(report.rootPartition == 2)
        #expect(report.osRelease?.versionID == "44")
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.kernel == "/boot/vmlinuz-\(v)")
        #expect(e.initrds == ["/boot/initramfs-\(v).img"])
        #expect(try inspector.readGuestFile(e.kernel, limit: 1 << 20) == kernel)
        #expect(try inspector.readGuestFile("/home/fedora/notes", limit: 100) == Array("in home".utf8))
        #expect(inspector.fallbackCommandLine(architecture: "x86_64") == "root=UUID=\(Self.rootUUID) ro rootflags=subvol=root rootfstype=btrfs console=ttyS0")
    }

    // MARK: openSUSE, Alpine, Arch

    @Test func openSUSEBootSymlinksIntoModules() throws {
        let layout = try GuestLayout("opensuse")
        let v = "6.4.0-150600.23.25-default"
        let kernel = FakeKernel.bzImage(version: v)
        let root = try layout.ext4([
            "/etc/os-release": GuestLayout.osRelease(id: "opensuse-leap", version: "15.6", name: "openSUSE Leap"),
            "/etc/fstab": .text("UUID=\(Self.rootUUID) / ext4 defaults 0 0\n"),
            "/usr/lib/modules/\(v)/vmlinuz": .file(kernel),
            "/boot/vmlinuz-\(v)": .symlink("../usr/lib/modules/\(v)/vmlinuz"),
            "/boot/vmlinuz": .symlink("vmlinuz-\(v)"),
            "/boot/initrd-\(v)": .text("suse initrd"),
            "/boot/initrd": .symlink("initrd-\(v)"),
            "/boot/grub2/grub.cfg": .text("""
                set default=0
                menuentry 'openSUSE Leap 15.6' --class opensuse $menuentry_id_option 'gnulinux-simple-x' {
                	search --no-floppy --fs-uuid --set=root \(Self.rootUUID)
                	linux /boot/vmlinuz-\(v) root=UUID=\(Self.rootUUID) splash=silent mitigations=auto quiet
                	initrd /boot/initrd-\(v)
                }
                """),
        ], uuid: Self.rootUUID, label: "ROOT")
        let disk = try layout.gptDisk([.init(number: 1, image: root, sizeMiB: 24, typeCode: "8300", name: "p.lxroot", guid: Self.rootPartUUID)])
        let (inspector, report) = try inspect(disk)
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.kernel == "/boot/vmlinuz-\(v)")
        #expect(try inspector.readGuestFile(e.kernel, limit: 1 << 20) == kernel)
        #expect(report.kernel?.versionString?.hasPrefix(v) == true)
    }

    @Test func alpineWholeDiskExtlinux() throws {
        let layout = try GuestLayout("alpine")
        let kernel = FakeKernel.bzImage(version: "6.6.58-0-virt")
        let disk = try layout.ext4([
            "/etc/os-release": GuestLayout.osRelease(id: "alpine", version: "3.20.3", name: "Alpine Linux"),
            "/etc/fstab": .text("UUID=\(Self.rootUUID)\t/\text4\trw,relatime 0 1\n"),
            "/boot/vmlinuz-virt": .file(kernel),
            "/boot/initramfs-virt": .text("alpine initramfs"),
            "/boot/extlinux.conf": .text("""
                DEFAULT menu.c32
                PROMPT 0
                MENU TITLE Alpine/Linux Boot Menu
                MENU HIDDEN
                TIMEOUT 10
                LABEL virt
                  MENU DEFAULT
                  MENU LABEL Linux virt
                  LINUX vmlinuz-virt
                  INITRD initramfs-virt
                  APPEND root=UUID=\(Self.rootUUID) modules=sd-mod,usb-storage,ext4 quiet rootfstype=ext4
                """),
        ], uuid: Self.rootUUID, label: "alpine", sizeMiB: 24)
        let (inspector, report) = try inspect(disk)
        #expect(report.partitionScheme == PartitionScheme.none)
        #expect(report.rootPartition == 0)
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.source == .extlinux)
        #expect(e.kernel == "/boot/vmlinuz-virt")
        #expect(e.initrds == ["/boot/initramfs-virt"])
        #expect(e.commandLine == "root=UUID=\(Self.rootUUID) modules=sd-mod,usb-storage,ext4 quiet rootfstype=ext4")
        #expect(report.defaultReason.contains("MENU DEFAULT"))
        #expect(try inspector.readGuestFile(e.kernel, limit: 1 << 20) == kernel)
    }

    @Test func archUnversionedNamesPairedByScan() throws {
        // No boot loader configuration: kernels found by name, each initrd paired with its
        // own kernel (never the -fallback one, never chosen separately), fallback cmdline.
        let layout = try GuestLayout("arch")
        let root = try layout.ext4([
            "/etc/os-release": GuestLayout.osRelease(id: "arch", version: "20241101", name: "Arch Linux"),
            "/etc/fstab": .text("UUID=\(Self.rootUUID) / ext4 rw,noatime,subvol=/@ 0 1\n"),
            "/boot/vmlinuz-linux": .file(FakeKernel.bzImage(version: "6.11.6-arch1-1")),
            "/boot/initramfs-linux.img": .text("arch initramfs"),
            "/boot/initramfs-linux-fallback.img": .text("arch fallback initramfs"),
            "/boot/vmlinuz-linux-lts": .file(FakeKernel.bzImage(version: "6.6.59-1-lts")),
            "/boot/initramfs-linux-lts.img": .text("lts initramfs"),
        ], uuid: Self.rootUUID, label: "")
        let disk = try layout.gptDisk([.init(number: 2, image: root, sizeMiB: 24, typeCode: "8300", name: "", guid: Self.rootPartUUID)])
        let (_, report) = try inspect(disk)
        #expect(report.bootEntries.count == 2)
        for e in report.bootEntries {
            #expect(e.initrds == [e.kernel.replacingOccurrences(of: "vmlinuz-", with: "initramfs-") + ".img"])
            #expect(e.commandLine == "root=UUID=\(Self.rootUUID) ro rootflags=subvol=/@ rootfstype=ext4 console=ttyS0")
            #expect(e.commandLineIsFallback)
        }
    }

    @Test func arm64ZbootKernelFallbackConsole() throws {
        let (guest, _) = try CloudImageLayouts.arm64Zboot(try GuestLayout("arm64"))
        let (inspector, report) = try inspect(guest.disk)
        let k = try #require(report.kernel)
        #expect(k.architecture == "arm64")
        #expect(k.format == "EFI zboot (zstd)")
        #expect(!k.qemuDirectBoot)
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.commandLine == "root=UUID=\(Self.rootUUID) ro rootfstype=ext4 console=ttyAMA0")
        #expect(e.commandLine == guest.commandLine)
        #expect(try inspector.readGuestFile(e.kernel, limit: 1 << 20) == guest.kernel)
    }

    // MARK: bootc / ostree

    @Test func bootcOstreeLoaderSymlinkAndCrossMountLinks() throws {
        let layout = try GuestLayout("bootc")
        let v = "6.11.4-301.fc41.x86_64"
        let kernel = FakeKernel.bzImage(version: v)
        let deploy = "/ostree/fedora-3c1f0a9e7b"
        let boot = try layout.ext4([
            "/loader": .symlink("loader.1"),
            "/loader.1/entries/ostree-1.conf": .text("title Fedora Linux 41 (ostree:0)\nversion 1\noptions root=UUID=\(Self.rootUUID) rw boot=UUID=\(Self.bootUUID) ostree=/ostree/boot.1/default/ab12/0\nlinux \(deploy)/vmlinuz-\(v)\ninitrd \(deploy)/initramfs-\(v).img\naboot /ostree/deploy/default/deploy/ab12.0/usr/lib/ostree-boot/aboot.img\n"),
            // A cross-mount absolute link: /boot on its own partition pointing into /usr.
            "\(deploy)/vmlinuz-\(v)": .symlink("/usr/lib/modules/\(v)/vmlinuz"),
            "\(deploy)/initramfs-\(v).img": .text("ostree initramfs"),
        ], uuid: Self.bootUUID, label: "boot")
        let root = try layout.ext4([
            "/usr/lib/os-release": GuestLayout.osRelease(id: "fedora", version: "41", name: "Fedora Linux"),
            "/etc/fstab": .text("UUID=\(Self.bootUUID) /boot ext4 defaults 1 2\n"),
            "/usr/lib/modules/\(v)/vmlinuz": .file(kernel),
            "/usr/lib/modules/\(v)/initramfs.img": .text("bootc initramfs"),
            "/etc/kernel/cmdline": .text("root=UUID=\(Self.rootUUID) rw console=ttyS0\n"),
            "/boot/.keep": .text(""),
        ], uuid: Self.rootUUID, label: "root")
        let disk = try layout.gptDisk([
            .init(number: 3, image: boot, sizeMiB: 24, typeCode: "8300", name: "boot", guid: "cccccccc-0000-4000-8000-0000000000b0"),
            .init(number: 4, image: root, sizeMiB: 24, typeCode: "8300", name: "root", guid: Self.rootPartUUID),
        ])
        let (inspector, report) = try inspect(disk)
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.source == .bls)
        #expect(e.kernel == "/boot\(deploy)/vmlinuz-\(v)")
        #expect(e.commandLine.contains("ostree=/ostree/boot.1/default/ab12/0"))
        #expect(try inspector.readGuestFile(e.kernel, limit: 1 << 20) == kernel)

        // The same root without a /boot loader: /usr/lib/modules and /etc/kernel/cmdline.
        let bare = try layout.gptDisk([.init(number: 4, image: root, sizeMiB: 24, typeCode: "8300", name: "root", guid: Self.rootPartUUID)])
        let (_, bareReport) = try inspect(bare)
        let b = bareReport.bootEntries[try #require(bareReport.defaultEntry)]
        #expect(b.source == .kernelInstall)
        #expect(b.kernel == "/usr/lib/modules/\(v)/vmlinuz")
        #expect(b.initrds == ["/usr/lib/modules/\(v)/initramfs.img"])
        #expect(b.commandLine == "root=UUID=\(Self.rootUUID) rw console=ttyS0")
    }

    // MARK: UKI

    @Test func unifiedKernelImageInTheESP() throws {
        let guest = try CloudImageLayouts.ukiInESP(try GuestLayout("uki"))
        let (inspector, report) = try inspect(guest.disk)
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.source == .uki)
        #expect(e.isUnifiedKernelImage)
        #expect(e.version == guest.version)
        #expect(e.commandLine == "root=UUID=\(Self.rootUUID) rw quiet")
        #expect(report.kernel?.format == "bzImage")
        let uki = try UnifiedKernelImage.open(inspector: inspector, path: e.kernel)
        #expect(try uki.sectionBytes(".linux", inspector: inspector, limit: 1 << 20) == guest.kernel)
        #expect(try uki.sectionBytes(".initrd", inspector: inspector, limit: 1 << 20) == guest.initrd)
    }

    // MARK: hostile configurations

    @Test func bootPathsOutsideTheFilesystemAreErrors() throws {
        let layout = try GuestLayout("escape")
        let grub = "menuentry 'evil' {\n linux /../../../etc/shadow root=/dev/vda1\n}\nmenuentry 'missing' {\n linux (hd0,gpt9)/vmlinuz\n}\n"
        let disk = try CloudImageLayouts.debianDisk(layout, grubCfg: grub)
        do {
            let (_, report) = try inspect(disk)
            Issue.record("expected an error, got \(report.bootEntries)")
        } catch {
            #expect("\(error)".contains("linux path \"/../../../etc/shadow\" climbs out of the filesystem root"))
        }
        // A malformed grub.cfg alone: the error names file and line.
        let layout3 = try GuestLayout("bad-grub")
        let disk3 = try CloudImageLayouts.debianDisk(layout3, grubCfg: "menuentry 'x' {\n linux /boot/vmlinuz-6.1.0-28-cloud-amd64\n")
        do {
            _ = try inspect(disk3)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)" == "/boot/grub/grub.cfg: GRUB script line 1: menuentry has no closing \"}\"")
        }
    }
}
