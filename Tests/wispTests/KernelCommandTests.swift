import Foundation
import Testing
import WispCore
import WispTestSupport

/// `wisp kernel extract` (and `wisp inspect`'s text) through the built binary on every
/// cloud image layout of CloudImageLayouts: the files written are byte-identical to the
/// guest's kernel and initrd, and the command line is the default entry's.
@Suite struct KernelCommandTests {
    static let rootUUID = CloudImageLayouts.rootUUID

    /// Runs `wisp kernel extract --json` and checks the files and the command line.
    static func extractMatches(_ guest: CloudImageLayouts.Guest) throws {
        let out = guest.layout.dir.file("out")
        let result = try WispBinary.run(["kernel", "extract", guest.disk, "-o", out, "--json"])
        #expect(result.status == 0, "\(result.stderrText)")
        let json = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        let kernelPath = try #require(json["kernel-path"] as? String)
        let initrdPath = try #require(json["initrd-path"] as? String)
        #expect(try WispBinary.bytes(kernelPath) == guest.kernel)
        #expect(try WispBinary.bytes(initrdPath) == guest.initrd)
        #expect(json["command-line"] as? String == guest.commandLine)
        #expect(try String(contentsOfFile: out + "/cmdline", encoding: .utf8) == guest.commandLine + "\n")
    }

    @Test func debianSavedEntryListAndInspect() throws {
        let layout = try GuestLayout("debian-cli")
        let disk = try CloudImageLayouts.debianDisk(layout, grubCfg: CloudImageLayouts.debianGrubCfg
            .replacingOccurrences(of: "set default=\"0\"", with: "set default=\"${saved_entry}\""),
            grubenv: ["saved_entry": "gnulinux-advanced-0a2c0df2>gnulinux-6.1.0-27-cloud-amd64-advanced-0a2c0df2"])
        let out = layout.dir.file("out")
        let result = try WispBinary.run(["kernel", "extract", disk, "-o", out, "--json"])
        #expect(result.status == 0, "\(result.stderrText)")
        let json = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        #expect(json?["kernel-path"] as? String == out + "/vmlinuz-6.1.0-27-cloud-amd64")
        #expect(try WispBinary.bytes(out + "/vmlinuz-6.1.0-27-cloud-amd64") == FakeKernel.bzImage(version: "6.1.0-27-cloud-amd64"))
        #expect(try WispBinary.bytes(out + "/initrd.img-6.1.0-27-cloud-amd64") == CloudImageLayouts.debianInitrd("6.1.0-27-cloud-amd64"))
        #expect(try String(contentsOfFile: out + "/cmdline", encoding: .utf8) == "root=PARTUUID=1d5fa5a4 ro console=ttyS0\n")
        // --entry by number and --list.
        let other = try WispBinary.run(["kernel", "extract", disk, "-o", out + "2", "--entry", "0"])
        #expect(other.status == 0, "\(other.stderrText)")
        #expect(try WispBinary.bytes(out + "2/vmlinuz-6.1.0-28-cloud-amd64") == FakeKernel.bzImage(version: "6.1.0-28-cloud-amd64"))
        let list = try WispBinary.run(["kernel", "extract", disk, "--list"])
        #expect(list.stdoutText.contains("*2  gnulinux-6.1.0-27-cloud-amd64-advanced-0a2c0df2"))
        let missing = try WispBinary.run(["kernel", "extract", disk, "-o", out + "3", "--entry", "nope"])
        #expect(missing.status != 0)
        #expect(missing.stderrText.contains("no boot entry \"nope\""))
        let human = try WispBinary.run(["inspect", disk])
        #expect(human.status == 0, "\(human.stderrText)")
        #expect(human.stdoutText.contains("os: Debian GNU/Linux 12"))
        #expect(human.stdoutText.contains("saved_entry"))
        // The text format of inspect is kept: one line per partition, filesystem and mount.
        #expect(human.stdoutText.contains("partition table: gpt\n"))
        #expect(human.stdoutText.contains("  15  start 2097152  size 34 MiB  vfat  uuid 1234-ABCD  on /boot/efi\n"), "\(human.stdoutText)")
    }

    @Test func arm64ZbootExtractedAsIsAndUnwrapped() throws {
        let (guest, image) = try CloudImageLayouts.arm64Zboot(try GuestLayout("arm64-cli"))
        let out = guest.layout.dir.file("out")
        let plain = try WispBinary.run(["kernel", "extract", guest.disk, "-o", out])
        #expect(plain.status == 0, "\(plain.stderrText)")
        #expect(try WispBinary.bytes(out + "/vmlinuz-\(guest.version)") == guest.kernel)
        let unwrapped = try WispBinary.run(["kernel", "extract", guest.disk, "-o", out, "--unwrap-zboot"])
        #expect(unwrapped.status == 0, "\(unwrapped.stderrText)")
        #expect(try WispBinary.bytes(out + "/vmlinuz-\(guest.version)") == image)
    }

    @Test func unifiedKernelImageTakenApart() throws {
        let guest = try CloudImageLayouts.ukiInESP(try GuestLayout("uki-cli"))
        let out = guest.layout.dir.file("out")
        let result = try WispBinary.run(["kernel", "extract", guest.disk, "-o", out])
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(try WispBinary.bytes(out + "/vmlinuz-\(guest.version)") == guest.kernel)
        #expect(try WispBinary.bytes(out + "/initrd-\(guest.version).img") == guest.initrd)
        #expect(try String(contentsOfFile: out + "/cmdline", encoding: .utf8) == guest.commandLine + "\n")
    }

    @Test func missingKernelFailsAndWritesNothing() throws {
        // A BLS entry naming a kernel that is not there: the plan fails with its name.
        let layout = try GuestLayout("missing-kernel")
        let root = try layout.ext4([
            "/etc/os-release": GuestLayout.osRelease(id: "fedora", version: "41", name: "Fedora Linux"),
            "/etc/fstab": .text("UUID=\(Self.rootUUID) / ext4 defaults 0 1\n"),
            "/boot/loader/entries/x.conf": .text("title x\nlinux /vmlinuz-9.9\noptions ro\n"),
        ], uuid: Self.rootUUID, label: "root")
        let disk = try layout.gptDisk([.init(number: 1, image: root, sizeMiB: 24, typeCode: "8300", name: "root",
                                             guid: CloudImageLayouts.rootPartUUID)])
        let out = layout.dir.file("out")
        let result = try WispBinary.run(["kernel", "extract", disk, "-o", out])
        #expect(result.status != 0)
        #expect(result.stderrText.contains("vmlinuz-9.9"))
        #expect(result.stderrText.contains("does not exist"))
        #expect(!FileManager.default.fileExists(atPath: out + "/cmdline"))
    }

    @Test func el9XFS() throws {
        try Self.extractMatches(try CloudImageLayouts.el9XFS(try GuestLayout("el9-xfs-cli")))
    }

    @Test func fedoraBtrfsRootExt4Boot() throws {
        try Self.extractMatches(try CloudImageLayouts.fedoraBtrfs(try GuestLayout("fedora-btrfs-cli")))
    }

    @Test func fedora44BootSubvolume() throws {
        try Self.extractMatches(try CloudImageLayouts.fedora44Btrfs(try GuestLayout("fedora44-cli")))
    }

    @Test func openSUSEBtrfs() throws {
        try Self.extractMatches(try CloudImageLayouts.openSUSEBtrfs(try GuestLayout("opensuse-btrfs-cli")))
    }

    @Test func archBtrfs() throws {
        try Self.extractMatches(try CloudImageLayouts.archBtrfs(try GuestLayout("arch-btrfs-cli")))
    }
}
