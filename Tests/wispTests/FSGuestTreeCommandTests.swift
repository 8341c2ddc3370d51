import Foundation
import Testing
import WispCore
import WispTestSupport

/// `wisp fs ls|cat|get` through the built binary show the guest's tree: the root plus every
/// fstab mount (separate /boot on ext4 and XFS, the ESP on /boot/efi, a btrfs root
/// subvolume with /home), as virt-ls and virt-cat do; `--partition` reads one filesystem
/// raw. Disks are CloudImageLayouts, made by mkfs.ext4 -d, mkfs.xfs -p, mkfs.btrfs
/// --rootdir, mkfs.vfat + mcopy and sgdisk at test time.
@Suite struct FSGuestTreeCommandTests {
    static func ls(_ disk: String, _ path: String, _ extra: [String] = []) throws -> [String] {
        try WispBinary.check(["fs", "ls", disk, path] + extra).stdoutText.split(separator: "\n").map(String.init)
    }

    static func cat(_ disk: String, _ path: String, _ extra: [String] = []) throws -> [UInt8] {
        Array(try WispBinary.check(["fs", "cat", disk, path] + extra).stdout)
    }

    // MARK: Ubuntu: ext4 /boot (p16), ESP on /boot/efi (p15, LABEL=UEFI)

    @Test func ubuntuSeparateBootAndESP() throws {
        let guest = try CloudImageLayouts.ubuntu(try GuestLayout("fs-ubuntu"))
        let disk = guest.disk, v = guest.version
        // /boot is partition 16, not the root's empty mount point (whose .keep it hides).
        let boot = ["efi", "grub", "initrd.img-\(v)", "lost+found", "vmlinuz", "vmlinuz-\(v)"]
        #expect(try Self.ls(disk, "/boot") == boot)
        #expect(try Self.ls(disk, "/", ["--partition", "16"]) == boot)
        #expect(try Self.ls(disk, "/boot", ["--partition", "1"]) == [".keep"])
        #expect(try Self.ls(disk, "/boot/efi") == ["EFI"])
        #expect(try Self.ls(disk, "/boot/efi/EFI") == ["BOOT", "ubuntu"])
        #expect(try Self.ls(disk, "/EFI", ["--partition", "UEFI"]) == ["BOOT", "ubuntu"])
        #expect(String(decoding: try Self.cat(disk, "/etc/os-release"), as: UTF8.self).contains("ID=ubuntu"))
        // The root's /vmlinuz is a relative link into the /boot partition.
        #expect(try Self.cat(disk, "/vmlinuz") == guest.kernel)
        #expect(try Self.cat(disk, "/boot/efi/../grub/grub.cfg") == Array(CloudImageLayouts.ubuntuGrubCfg.utf8))
        // ls -l shows the mount point as the mounted root: its link count is 2 plus the
        // subdirectories of partition 16's top level.
        let top = try JSONSerialization.jsonObject(with: WispBinary.check(["fs", "ls", "--json", disk, "/"]).stdout) as? [[String: Any]]
        let raw = try JSONSerialization.jsonObject(with: WispBinary.check(["fs", "ls", "--json", disk, "/", "--partition", "16"]).stdout) as? [[String: Any]]
        let bootEntry = try #require(top?.first { $0["name"] as? String == "boot" })
        let subdirectories = try #require(raw).filter { $0["type"] as? String == "directory" }.count
        #expect(bootEntry["links"] as? Int == 2 + subdirectories)
        #expect(subdirectories == 3)
        // get: a file on the /boot mount, and a tree on the ESP below it.
        let out = guest.layout.dir.file("out")
        try WispBinary.check(["fs", "get", disk, "/boot/vmlinuz-\(v)", "-o", out + "-kernel"])
        #expect(try WispBinary.bytes(out + "-kernel") == guest.kernel)
        try WispBinary.check(["fs", "get", disk, "/boot/efi/EFI", "-o", out + "-efi"])
        #expect(try WispBinary.bytes(out + "-efi/BOOT/BOOTX64.EFI") == Array("shim".utf8))
        #expect(try WispBinary.bytes(out + "-efi/ubuntu/shimx64.efi") == Array("shim".utf8))
    }

    // MARK: Alma/Rocky: XFS /boot (p3), XFS root (p4)

    @Test func el9XFSBoot() throws {
        let guest = try CloudImageLayouts.el9XFS(try GuestLayout("fs-el9"))
        let disk = guest.disk, v = guest.version
        let boot = try Self.ls(disk, "/boot")
        #expect(boot == (try Self.ls(disk, "/", ["--partition", "3"])))
        #expect(boot.contains("loader") && boot.contains("grub2") && boot.contains("vmlinuz-\(v)") && !boot.contains(".keep"), "\(boot)")
        #expect(try Self.ls(disk, "/boot", ["--partition", "PARTLABEL=root"]) == [".keep"])
        #expect(try Self.ls(disk, "/boot/loader/entries").count == 2)
        #expect(String(decoding: try Self.cat(disk, "/etc/os-release"), as: UTF8.self).contains("ID=almalinux"))
        let out = guest.layout.dir.file("initrd")
        try WispBinary.check(["fs", "get", disk, "/boot/initramfs-\(v).img", "-o", out])
        #expect(try WispBinary.bytes(out) == guest.initrd)
        try WispBinary.check(["fs", "get", disk, "/boot/vmlinuz-\(v)", "-o", out + "-kernel"])
        #expect(try WispBinary.bytes(out + "-kernel") == guest.kernel)
    }

    // MARK: Debian: the ESP on /boot/efi by PARTUUID, /boot on the root filesystem

    @Test func debianESPOnBootEFI() throws {
        let layout = try GuestLayout("fs-debian")
        let disk = try CloudImageLayouts.debianDisk(layout)
        #expect(try Self.ls(disk, "/boot/efi") == ["EFI"])
        #expect(try Self.ls(disk, "/boot/efi/EFI/debian") == ["grub.cfg"])
        #expect(try Self.cat(disk, "/boot/efi/EFI/debian/grub.cfg") == Array(CloudImageLayouts.debianESPGrubCfg.utf8))
        #expect(try Self.ls(disk, "/boot").contains("vmlinuz-6.1.0-28-cloud-amd64"))
        #expect(try Self.ls(disk, "/boot/efi", ["--partition", "1"]) == [])
        #expect(try Self.cat(disk, "/vmlinuz") == FakeKernel.bzImage(version: "6.1.0-28-cloud-amd64"))
        let out = layout.dir.file("grub.cfg")
        try WispBinary.check(["fs", "get", disk, "/boot/efi/EFI/debian/grub.cfg", "-o", out])
        #expect(try String(contentsOfFile: out, encoding: .utf8) == CloudImageLayouts.debianESPGrubCfg)
    }

    // MARK: Fedora: btrfs root in subvolume "root", /home in "home", ext4 /boot

    @Test func fedoraBtrfsRootSubvolumeAndHome() throws {
        let guest = try CloudImageLayouts.fedoraBtrfs(try GuestLayout("fs-fedora"))
        let disk = guest.disk
        // The failure users saw: "3 filesystems and none holds an OS root".
        #expect(String(decoding: try Self.cat(disk, "/etc/os-release"), as: UTF8.self).contains("ID=fedora"))
        #expect(try Self.ls(disk, "/") == ["boot", "etc", "home"])
        #expect(try Self.ls(disk, "/home") == ["fedora"])
        #expect(try Self.cat(disk, "/home/fedora/.bashrc") == Array("# fedora home\n".utf8))
        let boot = try Self.ls(disk, "/boot")
        #expect(boot == (try Self.ls(disk, "/", ["--partition", "2"])))
        #expect(boot.contains("loader") && boot.contains("vmlinuz-\(guest.version)"), "\(boot)")
        // Raw, the btrfs top level shows the subvolumes themselves.
        #expect(try Self.ls(disk, "/", ["--partition", "3"]) == ["home", "root"])
        #expect(try Self.ls(disk, "/", ["--partition", "LABEL=fedora"]) == ["home", "root"])
        let out = guest.layout.dir.file("home")
        try WispBinary.check(["fs", "get", disk, "/home", "-o", out])
        #expect(try WispBinary.bytes(out + "/fedora/.bashrc") == Array("# fedora home\n".utf8))
        try WispBinary.check(["fs", "get", disk, "/boot/vmlinuz-\(guest.version)", "-o", out + "-kernel"])
        #expect(try WispBinary.bytes(out + "-kernel") == guest.kernel)
    }

    // MARK: without an OS root

    @Test func withoutAnOSRootOneFilesystemIsReadAndSeveralNeedAChoice() throws {
        let lone = try GuestDiskFixture(withRoot: false)
        #expect(try Self.ls(lone.disk, "/") == ["EFI", "empty.txt"])
        let two = try GuestDiskFixture()
        try ToolRunner.check("mdel", ["-i", "\(two.disk)@@\((2048 + 40 * 2048) * 512)", "::/etc/os-release"],
                             environment: GuestDiskFixture.environment)
        let refused = try WispBinary.run(["fs", "ls", two.disk, "/"])
        #expect(refused.status == 64)
        #expect(refused.stderrText.contains("2 filesystems and none holds an OS root; choose one with --partition"), "\(refused.stderrText)")
        #expect(try Self.ls(two.disk, "/", ["--partition", "ROOTFS"]) == ["etc"])
    }

    @Test func aPartitionNameThatIsNoPartitionIsAUsageError() throws {
        let lone = try GuestDiskFixture(withRoot: false)
        for bad in ["/dev/vdb1", "/dev/mapper/root", "LABEL="] {
            let result = try WispBinary.run(["fs", "ls", lone.disk, "/", "--partition", bad])
            #expect(result.status == 64, "\(bad)")
            #expect(result.stderrText.contains("--partition"), "\(result.stderrText)")
        }
        let help = try WispBinary.check(["fs", "--help"]).stdoutText
        #expect(help.contains("wisp fs ls fedora.qcow2 / --partition 3"))
    }
}
