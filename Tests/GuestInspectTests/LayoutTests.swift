import Foundation
import GuestInspect
import Testing
import WispCore
import WispTestSupport

/// Every major cloud image layout, built small at test time with the real mkfs tools, read
/// back through Wisp's readers, and extracted with the real `wisp` binary.
@Suite struct LayoutTests {
    static let rootUUID = "0a2c0df2-25b1-4a5e-9d7e-5f1e2a3b4c5d"
    static let bootUUID = "5b9c1e2d-0000-4000-8000-00000000b007"
    static let rootPartUUID = "1d5fa5a4-9b3c-4d7a-8f2e-3c4b5a697887"

    func inspect(_ disk: String) throws -> (GuestInspector, GuestReport) {
        let inspector = try GuestInspector(disk: try FileBlockDevice(path: disk))
        return (inspector, try inspector.inspect())
    }

    /// Runs the built `wisp` binary (the same one users run).
    static func wisp(_ args: [String]) throws -> ToolResult {
        let binary = TestImage.repositoryRoot + "/.build/debug/wisp"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw WispError.notFound("\(binary) is missing: run `swift build` first (scripts/test does)")
        }
        return try ToolRunner.run(binary, args)
    }

    static func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    // MARK: Debian genericcloud

    static func debianTree(kernels: [String: [UInt8]], grubCfg: String, grubenv: [String: String] = [:]) -> [String: GuestLayout.Node] {
        var tree: [String: GuestLayout.Node] = [
            "/etc/os-release": .symlink("../usr/lib/os-release"),
            "/usr/lib/os-release": GuestLayout.osRelease(id: "debian", version: "12", name: "Debian GNU/Linux"),
            "/etc/fstab": .text("PARTUUID=\(rootPartUUID) / ext4 rw,discard,errors=remount-ro,x-systemd.growfs 0 1\nPARTUUID=aaaaaaaa-0000-4000-8000-00000000e5f0 /boot/efi vfat defaults 0 0\n"),
            "/sbin/init": .symlink("/lib/systemd/systemd"),
            "/boot/grub/grub.cfg": .text(grubCfg),
            "/vmlinuz": .symlink("boot/vmlinuz-6.1.0-28-cloud-amd64"),
            "/initrd.img": .symlink("boot/initrd.img-6.1.0-28-cloud-amd64"),
        ]
        if !grubenv.isEmpty { tree["/boot/grub/grubenv"] = .file(GuestLayout.grubenv(grubenv)) }
        for (version, bytes) in kernels {
            tree["/boot/vmlinuz-\(version)"] = .file(bytes)
            tree["/boot/initrd.img-\(version)"] = .file(Array("initrd for \(version)\n".utf8) + [UInt8](repeating: 7, count: 3000))
            tree["/boot/config-\(version)"] = .text("CONFIG_X86_64=y\n")
        }
        return tree
    }

    func debianDisk(_ layout: GuestLayout, grubCfg: String = ConfigParserTests.debianGrubCfg
                        .replacingOccurrences(of: "0a2c0df2-25b1-4a5e-9d7e-5f1e2a3b4c5d", with: LayoutTests.rootUUID),
                    grubenv: [String: String] = [:]) throws -> String {
        let kernels = ["6.1.0-28-cloud-amd64": FakeKernel.bzImage(version: "6.1.0-28-cloud-amd64"),
                       "6.1.0-27-cloud-amd64": FakeKernel.bzImage(version: "6.1.0-27-cloud-amd64")]
        let root = try layout.ext4(Self.debianTree(kernels: kernels, grubCfg: grubCfg, grubenv: grubenv),
                                   uuid: Self.rootUUID, label: "")
        let esp = try layout.vfat(["/EFI/debian/grub.cfg": .text("search.fs_uuid \(Self.rootUUID) root\nconfigfile ($root)/boot/grub/grub.cfg\n")],
                                  volumeID: "1234ABCD", label: "")
        return try layout.gptDisk([
            .init(number: 14, image: nil, sizeMiB: 1, typeCode: "ef02", name: "", guid: "bbbbbbbb-0000-4000-8000-0000000000b1"),
            .init(number: 15, image: esp, sizeMiB: 34, typeCode: "ef00", name: "", guid: "aaaaaaaa-0000-4000-8000-00000000e5f0"),
            .init(number: 1, image: root, sizeMiB: 24, typeCode: "8300", name: "", guid: Self.rootPartUUID),
        ])
    }

    @Test func debianGenericCloud() throws {
        let layout = try GuestLayout("debian")
        let disk = try debianDisk(layout)
        let (_, report) = try inspect(disk)
        #expect(report.partitionScheme == "gpt")
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

    @Test func debianExtractWithTheCLI() throws {
        let layout = try GuestLayout("debian-cli")
        let disk = try debianDisk(layout, grubCfg: ConfigParserTests.debianGrubCfg
            .replacingOccurrences(of: "0a2c0df2-25b1-4a5e-9d7e-5f1e2a3b4c5d", with: Self.rootUUID)
            .replacingOccurrences(of: "set default=\"0\"", with: "set default=\"${saved_entry}\""),
            grubenv: ["saved_entry": "gnulinux-advanced-0a2c0df2>gnulinux-6.1.0-27-cloud-amd64-advanced-0a2c0df2"])
        let out = layout.dir.file("out")
        let result = try Self.wisp(["kernel", "extract", disk, "-o", out, "--json"])
        #expect(result.status == 0, "\(result.stderrText)")
        let json = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        #expect(json?["kernelPath"] as? String == out + "/vmlinuz-6.1.0-27-cloud-amd64")
        #expect(try Self.bytes(out + "/vmlinuz-6.1.0-27-cloud-amd64") == FakeKernel.bzImage(version: "6.1.0-27-cloud-amd64"))
        #expect(try Self.bytes(out + "/initrd.img-6.1.0-27-cloud-amd64").prefix(30) == ArraySlice(Array("initrd for 6.1.0-27-cloud-amd64\n".utf8).prefix(30)))
        #expect(try String(contentsOfFile: out + "/cmdline", encoding: .utf8) == "root=PARTUUID=1d5fa5a4 ro console=ttyS0\n")
        // --entry by number and --list.
        let other = try Self.wisp(["kernel", "extract", disk, "-o", out + "2", "--entry", "0"])
        #expect(other.status == 0, "\(other.stderrText)")
        #expect(try Self.bytes(out + "2/vmlinuz-6.1.0-28-cloud-amd64") == FakeKernel.bzImage(version: "6.1.0-28-cloud-amd64"))
        let list = try Self.wisp(["kernel", "extract", disk, "--list"])
        #expect(list.stdoutText.contains("*2  gnulinux-6.1.0-27-cloud-amd64-advanced-0a2c0df2"))
        let missing = try Self.wisp(["kernel", "extract", disk, "-o", out + "3", "--entry", "nope"])
        #expect(missing.status != 0)
        #expect(missing.stderrText.contains("no boot entry \"nope\""))
        let human = try Self.wisp(["inspect", disk])
        #expect(human.status == 0, "\(human.stderrText)")
        #expect(human.stdoutText.contains("os: Debian GNU/Linux 12"))
        #expect(human.stdoutText.contains("saved_entry"))
    }

    // MARK: Ubuntu

    @Test func ubuntuSeparateBootRecoveryNeverDefault() throws {
        let layout = try GuestLayout("ubuntu")
        let grub = """
            if [ -s $prefix/grubenv ]; then
              set have_grubenv=true
              load_env
            fi
            if [ "${next_entry}" ] ; then
               set default="${next_entry}"
            else
               set default="${saved_entry}"
            fi
            set linux_gfx_mode=
            export linux_gfx_mode
            if [ "${linux_gfx_mode}" != "text" ]; then set vt_handoff=vt.handoff=7; else set vt_handoff=; fi
            function recordfail {
              set recordfail=1
              if [ -n "${have_grubenv}" ]; then if [ -z "${boot_once}" ]; then save_env recordfail; fi; fi
            }
            menuentry 'Ubuntu' --class ubuntu --class gnu-linux $menuentry_id_option 'gnulinux-simple-\(Self.rootUUID)' {
            	recordfail
            	load_video
            	gfxmode $linux_gfx_mode
            	insmod ext2
            	search --no-floppy --fs-uuid --set=root \(Self.bootUUID)
            	linux	/vmlinuz-6.8.0-49-generic root=LABEL=cloudimg-rootfs ro  console=tty1 console=ttyS0 $vt_handoff
            	initrd	/initrd.img-6.8.0-49-generic
            }
            submenu 'Advanced options for Ubuntu' $menuentry_id_option 'gnulinux-advanced-\(Self.rootUUID)' {
            	menuentry 'Ubuntu, with Linux 6.8.0-49-generic (recovery mode)' --class ubuntu $menuentry_id_option 'gnulinux-6.8.0-49-generic-recovery-\(Self.rootUUID)' {
            		search --no-floppy --fs-uuid --set=root \(Self.bootUUID)
            		linux	/vmlinuz-6.8.0-49-generic root=LABEL=cloudimg-rootfs ro recovery nomodeset dis_ucode_ldr
            		initrd	/initrd.img-6.8.0-49-generic
            	}
            }
            """
        let kernel = FakeKernel.bzImage(version: "6.8.0-49-generic")
        let boot = try layout.ext4([
            "/grub/grub.cfg": .text(grub),
            "/grub/grubenv": .file(GuestLayout.grubenv(["saved_entry": "gnulinux-advanced-\(Self.rootUUID)>gnulinux-6.8.0-49-generic-recovery-\(Self.rootUUID)"])),
            "/vmlinuz-6.8.0-49-generic": .file(kernel),
            "/initrd.img-6.8.0-49-generic": .text("ubuntu initrd"),
            "/vmlinuz": .symlink("vmlinuz-6.8.0-49-generic"),
        ], uuid: Self.bootUUID, label: "BOOT")
        let root = try layout.ext4([
            "/etc/os-release": GuestLayout.osRelease(id: "ubuntu", version: "24.04", name: "Ubuntu"),
            "/etc/fstab": .text("LABEL=cloudimg-rootfs\t/\t ext4\tdiscard,commit=30,errors=remount-ro\t0 1\nLABEL=BOOT\t/boot\text4\tdefaults\t0 2\nLABEL=UEFI\t/boot/efi\tvfat\tumask=0077\t0 1\n"),
            "/boot/.keep": .text(""),
        ], uuid: Self.rootUUID, label: "cloudimg-rootfs")
        let disk = try layout.gptDisk([
            .init(number: 14, image: nil, sizeMiB: 1, typeCode: "ef02", name: "", guid: "bbbbbbbb-0000-4000-8000-0000000000b1"),
            .init(number: 16, image: boot, sizeMiB: 24, typeCode: "ea00", name: "", guid: "cccccccc-0000-4000-8000-0000000000b0"),
            .init(number: 1, image: root, sizeMiB: 24, typeCode: "8300", name: "", guid: Self.rootPartUUID),
        ])
        let (inspector, report) = try inspect(disk)
        #expect(report.filesystems.first { $0.partition == 16 }?.mountPoint == "/boot")
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
        "title Fedora Linux (\(version)) 41 (Cloud Edition)\nversion \(version)\nlinux /vmlinuz-\(version)\ninitrd /initramfs-\(version).img $tuned_initrd\noptions \(options)\ngrub_users $grub_users\ngrub_arg --unrestricted\ngrub_class fedora\n\(extra)"
    }

    func fedoraBootFS(_ layout: GuestLayout, grubenv: [String: String], optionsText: String, withGrubCfg: Bool = true) throws -> (String, [String: [UInt8]]) {
        let machine = "3f1e0c0a9f0b4d6e8e2c1a7b5d9c0e11"
        let versions = ["6.11.4-301.fc41.x86_64", "6.9.12-200.fc41.x86_64", "6.10.3-200.fc41.x86_64"]
        var tree: [String: GuestLayout.Node] = [
            "/grub2/grubenv": .file(GuestLayout.grubenv(grubenv)),
            "/loader/entries/\(machine)-0-rescue.conf": .text("title Fedora Linux (0-rescue-\(machine)) 41\nversion 0-rescue-\(machine)\nlinux /vmlinuz-0-rescue-\(machine)\ninitrd /initramfs-0-rescue-\(machine).img\noptions \(optionsText)\n"),
            "/vmlinuz-0-rescue-\(machine)": .file(FakeKernel.bzImage(version: "rescue")),
            "/initramfs-0-rescue-\(machine).img": .text("rescue initrd"),
        ]
        if withGrubCfg {
            tree["/grub2/grub.cfg"] = .text("""
                set pager=1
                if [ -f ${config_directory}/grubenv ]; then
                  load_env -f ${config_directory}/grubenv
                elif [ -s $prefix/grubenv ]; then
                  load_env
                fi
                if [ "${next_entry}" ] ; then
                   set default="${next_entry}"
                   set next_entry=
                   save_env next_entry
                   set boot_once=true
                else
                   set default="${saved_entry}"
                fi
                search --no-floppy --fs-uuid --set=root \(Self.bootUUID)
                set boot=$root
                insmod blscfg
                blscfg
                """)
        }
        var kernels: [String: [UInt8]] = [:]
        for v in versions {
            tree["/loader/entries/\(machine)-\(v).conf"] = .text(Self.blsEntry(v, options: optionsText))
            let k = FakeKernel.bzImage(version: v)
            kernels[v] = k
            tree["/vmlinuz-\(v)"] = .file(k)
            tree["/initramfs-\(v).img"] = .text("initramfs \(v)")
            tree["/.vmlinuz-\(v).hmac"] = .text("hmac")
        }
        return (try layout.ext4(tree, uuid: Self.bootUUID, label: "boot"), kernels)
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
        let layout = try GuestLayout("el9-xfs")
        let v = "5.14.0-427.13.1.el9_4.x86_64", old = "5.14.0-70.13.1.el9_0.x86_64"
        let machine = "8e4b2d6f0c1a4e3b9d7f5a2c1b0e9d8f"
        let kernel = FakeKernel.bzImage(version: v)
        var bootTree: [String: GuestLayout.Node] = [
            "/grub2/grubenv": .file(GuestLayout.grubenv(["saved_entry": "\(machine)-\(v)",
                                                         "kernelopts": "root=UUID=\(Self.rootUUID) console=tty0 console=ttyS0,115200n8 no_timer_check net.ifnames=0",
                                                         "boot_success": "0"])),
            "/grub2/grub.cfg": .text("set pager=1\nif [ -f ${config_directory}/grubenv ]; then\n  load_env -f ${config_directory}/grubenv\nelif [ -s $prefix/grubenv ]; then\n  load_env\nfi\nif [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\nelse\n   set default=\"${saved_entry}\"\nfi\ninsmod blscfg\nblscfg\n"),
        ]
        for version in [v, old] {
            bootTree["/loader/entries/\(machine)-\(version).conf"] = .text("title AlmaLinux (\(version)) 9.4 (Seafoam Ocelot)\nversion \(version)\nlinux /vmlinuz-\(version)\ninitrd /initramfs-\(version).img $tuned_initrd\noptions $kernelopts $tuned_params\nid almalinux-20240501-\(version)\ngrub_users $grub_users\ngrub_arg --unrestricted\ngrub_class almalinux\n")
            bootTree["/vmlinuz-\(version)"] = .file(version == v ? kernel : FakeKernel.bzImage(version: version))
            bootTree["/initramfs-\(version).img"] = .text("initramfs \(version)")
        }
        let boot = try layout.xfs(bootTree, uuid: Self.bootUUID, label: "boot")
        let root = try layout.xfs([
            "/etc/os-release": GuestLayout.osRelease(id: "almalinux", version: "9.4", name: "AlmaLinux"),
            "/etc/fstab": .text("UUID=\(Self.rootUUID) / xfs defaults 0 0\nUUID=\(Self.bootUUID) /boot xfs defaults 0 0\n"),
            "/boot/.keep": .text(""),
        ], uuid: Self.rootUUID, label: "root")
        let disk = try layout.gptDisk([
            .init(number: 3, image: boot, sizeMiB: 300, typeCode: "ea00", name: "boot", guid: "cccccccc-0000-4000-8000-0000000000b0"),
            .init(number: 4, image: root, sizeMiB: 300, typeCode: "8300", name: "root", guid: Self.rootPartUUID),
        ])
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
        try BtrfsLayoutTests.extractMatches(disk, out: layout.dir.file("out"), kernel: kernel,
                                            initrd: Array("initramfs \(v)".utf8), commandLine: e.commandLine)
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
        #expect(report.partitionScheme == "none")
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

    @Test func arm64ZbootKernelFallbackConsoleAndUnwrap() throws {
        let layout = try GuestLayout("arm64")
        let v = "6.12.9-200.fc41.aarch64"
        let image = FakeKernel.arm64Image(version: v)
        let zboot = FakeKernel.zboot(payload: try FakeKernel.compress(image, with: "zstd", in: layout.dir.path), method: "zstd")
        let disk = try layout.ext4([
            "/etc/os-release": GuestLayout.osRelease(id: "fedora", version: "41", name: "Fedora Linux"),
            "/etc/fstab": .text("UUID=\(Self.rootUUID) / ext4 defaults 0 1\n"),
            "/boot/vmlinuz-\(v)": .file(zboot),
            "/boot/initramfs-\(v).img": .text("arm initramfs"),
        ], uuid: Self.rootUUID, label: "root")
        let (_, report) = try inspect(disk)
        let k = try #require(report.kernel)
        #expect(k.architecture == "arm64")
        #expect(k.format == "EFI zboot (zstd)")
        #expect(!k.qemuDirectBoot)
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.commandLine == "root=UUID=\(Self.rootUUID) ro rootfstype=ext4 console=ttyAMA0")
        let out = layout.dir.file("out")
        let plain = try Self.wisp(["kernel", "extract", disk, "-o", out])
        #expect(plain.status == 0, "\(plain.stderrText)")
        #expect(try Self.bytes(out + "/vmlinuz-\(v)") == zboot)
        let unwrapped = try Self.wisp(["kernel", "extract", disk, "-o", out, "--unwrap-zboot"])
        #expect(unwrapped.status == 0, "\(unwrapped.stderrText)")
        #expect(try Self.bytes(out + "/vmlinuz-\(v)") == image)
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
        let layout = try GuestLayout("uki")
        let v = "6.11.4-301.fc41.x86_64"
        let kernel = FakeKernel.bzImage(version: v)
        let initrd = Array("uki initrd".utf8) + [UInt8](repeating: 3, count: 5000)
        let uki = FakeKernel.uki(sections: [(".osrel", Array("ID=fedora\nVERSION_ID=41\nPRETTY_NAME=\"Fedora Linux 41\"\n".utf8)),
                                            (".cmdline", Array("root=UUID=\(Self.rootUUID) rw quiet".utf8)),
                                            (".uname", Array(v.utf8)), (".linux", kernel), (".initrd", initrd)])
        let esp = try layout.vfat(["/EFI/Linux/fedora-\(v).efi": .file(uki), "/EFI/BOOT/BOOTX64.EFI": .text("stub")],
                                  volumeID: "ABCD1234", label: "ESP")
        let root = try layout.ext4([
            "/etc/os-release": GuestLayout.osRelease(id: "fedora", version: "41", name: "Fedora Linux"),
            "/etc/fstab": .text("UUID=\(Self.rootUUID) / ext4 defaults 0 1\nUUID=ABCD-1234 /efi vfat umask=0077 0 2\n"),
        ], uuid: Self.rootUUID, label: "root")
        let disk = try layout.gptDisk([
            .init(number: 1, image: esp, sizeMiB: 34, typeCode: "ef00", name: "esp", guid: "aaaaaaaa-0000-4000-8000-00000000e5f0"),
            .init(number: 2, image: root, sizeMiB: 24, typeCode: "8304", name: "root", guid: Self.rootPartUUID),
        ])
        let (_, report) = try inspect(disk)
        let e = report.bootEntries[try #require(report.defaultEntry)]
        #expect(e.source == .uki)
        #expect(e.isUnifiedKernelImage)
        #expect(e.version == v)
        #expect(e.commandLine == "root=UUID=\(Self.rootUUID) rw quiet")
        #expect(report.kernel?.format == "bzImage")
        let out = layout.dir.file("out")
        let result = try Self.wisp(["kernel", "extract", disk, "-o", out])
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(try Self.bytes(out + "/vmlinuz-\(v)") == kernel)
        #expect(try Self.bytes(out + "/initrd-\(v).img") == initrd)
        #expect(try String(contentsOfFile: out + "/cmdline", encoding: .utf8) == "root=UUID=\(Self.rootUUID) rw quiet\n")
    }

    // MARK: hostile configurations

    @Test func bootPathsOutsideTheFilesystemAreErrors() throws {
        let layout = try GuestLayout("escape")
        let grub = "menuentry 'evil' {\n linux /../../../etc/shadow root=/dev/vda1\n}\nmenuentry 'missing' {\n linux (hd0,gpt9)/vmlinuz\n}\n"
        let disk = try debianDisk(layout, grubCfg: grub)
        do {
            let (_, report) = try inspect(disk)
            Issue.record("expected an error, got \(report.bootEntries)")
        } catch {
            #expect("\(error)".contains("linux path \"/../../../etc/shadow\" climbs out of the filesystem root"))
        }
        // A BLS entry naming a kernel that is not there: the plan fails with its name.
        let layout2 = try GuestLayout("missing-kernel")
        let root = try layout2.ext4([
            "/etc/os-release": GuestLayout.osRelease(id: "fedora", version: "41", name: "Fedora Linux"),
            "/etc/fstab": .text("UUID=\(Self.rootUUID) / ext4 defaults 0 1\n"),
            "/boot/loader/entries/x.conf": .text("title x\nlinux /vmlinuz-9.9\noptions ro\n"),
        ], uuid: Self.rootUUID, label: "root")
        let disk2 = try layout2.gptDisk([.init(number: 1, image: root, sizeMiB: 24, typeCode: "8300", name: "root", guid: Self.rootPartUUID)])
        let out = layout2.dir.file("out")
        let result = try Self.wisp(["kernel", "extract", disk2, "-o", out])
        #expect(result.status != 0)
        #expect(result.stderrText.contains("vmlinuz-9.9"))
        #expect(result.stderrText.contains("does not exist"))
        #expect(!FileManager.default.fileExists(atPath: out + "/cmdline"))
        // A malformed grub.cfg alone: the error names file and line.
        let layout3 = try GuestLayout("bad-grub")
        let disk3 = try debianDisk(layout3, grubCfg: "menuentry 'x' {\n linux /boot/vmlinuz-6.1.0-28-cloud-amd64\n")
        do {
            _ = try inspect(disk3)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)" == "/boot/grub/grub.cfg: GRUB script line 1: menuentry has no closing \"}\"")
        }
    }
}
