import Foundation
import Testing
import WispCore
import WispTestSupport

/// `wisp run x.iso` on a small live ISO made at test time: the test image's own kernel and
/// initrd (taken out by `wisp kernel extract`) on an ISO 9660 medium that xorriso writes, with
/// a GRUB menu at boot/grub/grub.cfg naming them and no root=. One TCG boot: Wisp finds the
/// kernel on the medium, boots it directly with its serial console added, sees no cloud-init
/// on the medium, says so and attaches to the console; the Debian initramfs, given no root,
/// drops to its "(initramfs)" shell on that console. The blank disk is made at --disk-size,
/// `wisp stop`/`start` work on the instance, `wisp rm` removes the disk, and the ISO's bytes
/// are the same before and after.
@Suite(.serialized) struct LiveISOBootTests {
    static func makeLiveISO(wisp: String, image: String, in dir: TemporaryDirectory) throws -> String {
        let fm = FileManager.default
        let tree = dir.file("tree")
        for sub in ["live", "boot/grub"] { try fm.createDirectory(atPath: "\(tree)/\(sub)", withIntermediateDirectories: true) }
        let kernels = dir.file("kernel")
        try ToolRunner.check(wisp, ["kernel", "extract", image, "-o", kernels])
        let files = try fm.contentsOfDirectory(atPath: kernels)
        let vmlinuz = try #require(files.first { $0.hasPrefix("vmlinuz") })
        let initrd = try #require(files.first { $0.hasPrefix("initrd") })
        try fm.copyItem(atPath: "\(kernels)/\(vmlinuz)", toPath: "\(tree)/live/vmlinuz")
        try fm.copyItem(atPath: "\(kernels)/\(initrd)", toPath: "\(tree)/live/initrd.img")
        try Data("""
            set default=0
            set timeout=1
            menuentry "Wisp live (initramfs only)" {
                linux /live/vmlinuz quiet
                initrd /live/initrd.img
            }

            """.utf8).write(to: URL(fileURLWithPath: "\(tree)/boot/grub/grub.cfg"))
        let iso = dir.file("wisp-live.iso")
        try ToolRunner.check("xorriso", ["-as", "mkisofs", "-R", "-J", "-V", "WISP_LIVE", "-o", iso, tree])
        return iso
    }

    static func sha256(_ path: String) throws -> String {
        String(try ToolRunner.check("sha256sum", [path]).stdoutText.prefix(64))
    }

    @Test(.timeLimit(.minutes(20))) func liveISOBootsToItsInitramfsOnTheConsole() throws {
        let box = try BootTests.Sandbox()
        defer { box.cleanUp() }
        let iso = try Self.makeLiveISO(wisp: box.wisp, image: box.image, in: box.dir)
        let before = try Self.sha256(iso)

        // Inspection names the GRUB entry on the medium.
        let inspect = try box.check(["inspect", "--json", iso]).stdoutText
        let report = try #require(try JSONSerialization.jsonObject(with: Data(inspect.utf8)) as? [String: Any])
        let entry = try #require((report["boot-entries"] as? [[String: Any]])?.first, "\(inspect)")
        #expect(entry["kernel"] as? String == "/live/vmlinuz")
        #expect(entry["config-path"] as? String == "/boot/grub/grub.cfg", "\(entry)")

        // stdin is not a terminal: the console attach ends at its end of file, and the VM runs on.
        let started = Date()
        let run = try box.check(["run", "--name", "live", "--accel", BootTests.accel, "--memory", "1G", "--disk-size", "3G", iso])
        #expect(run.stderrText.contains("no cloud-init found on \(iso)"), "\(run.stderrText)")
        #expect(run.stderrText.contains("attached to the serial console of live"), "\(run.stderrText)")

        let instance = box.dir.file("data") + "/wisp/instances/live"
        let commandLine = try String(contentsOfFile: instance + "/qemu.cmdline", encoding: .utf8)
        #expect(commandLine.contains("-kernel \(instance)/vmlinuz"))
        #expect(commandLine.contains("-append 'quiet console=ttyS0,115200 ds=nocloud'"), "\(commandLine)")
        #expect(commandLine.contains(#""filename":"\#(iso)","node-name":"cd0-file","read-only":true"#), "\(commandLine)")
        #expect(commandLine.contains("ide-cd,bus=ide.0,drive=cd0"))

        // The Debian initramfs, given no root=, drops to its shell on the serial console.
        var log = ""
        let deadline = Date().addingTimeInterval(600)
        while Date() < deadline {
            log = try box.check(["logs", "live"]).stdoutText
            if log.contains("(initramfs)") { break }
            Thread.sleep(forTimeInterval: 2)
        }
        let seconds = Date().timeIntervalSince(started)
        #expect(log.contains("No root device specified"), "\(log.suffix(2000))")
        #expect(log.contains("(initramfs)"), "\(log.suffix(2000))")
        FileHandle.standardError.write(Data("live ISO: run to the (initramfs) prompt in \(String(format: "%.1f", seconds)) s (\(BootTests.accel))\n".utf8))

        // The blank disk, at --disk-size; the ISO listed as the image and as the CD-ROM.
        let disk = try ToolRunner.check("qemu-img", ["info", "--output=json", "-U", instance + "/overlay.qcow2"]).stdoutText
        let diskInfo = try #require(try JSONSerialization.jsonObject(with: Data(disk.utf8)) as? [String: Any])
        #expect((diskInfo["virtual-size"] as? NSNumber)?.uint64Value == 3 << 30)
        #expect(diskInfo["backing-filename"] == nil, "a blank disk, not an overlay on the ISO")
        let info = try box.check(["info", "--json", "live"]).stdoutText
        let view = try JSONSerialization.jsonObject(with: Data(info.utf8)) as? [String: Any]
        #expect(view?["image"] as? String == iso)
        let disks = view?["disks"] as? [[String: Any]] ?? []
        #expect(disks.contains { $0["path"] as? String == iso && $0["cdrom"] as? Bool == true && $0["read-only"] as? Bool == true }, "\(info)")
        #expect(try JSONSchemaJudge.problems(info, definition: "instance") == "")

        // stop and start: a console-only guest is started, not waited for over SSH.
        try box.check(["stop", "--force", "live"])
        let start = try box.check(["start", "--accel", BootTests.accel, "live"])
        #expect(start.stderrText.contains("wisp console live"), "\(start.stderrText)")
        #expect(try box.check(["list"]).stdoutText.contains("running"))
        // Suspend and resume without an SSH login: no flush over SSH to try, no login to wait for.
        let suspended = Date()
        let suspend = try box.check(["suspend", "live"])
        #expect(!suspend.stderrText.contains("could not reach the guest over SSH"), "\(suspend.stderrText)")
        #expect(try box.check(["list"]).stdoutText.contains("suspended"))
        let resume = try box.check(["start", "live"])
        #expect(!resume.stderrText.contains("booting it cold"), "\(resume.stderrText)")
        #expect(try box.check(["list"]).stdoutText.contains("running"))
        #expect(Date().timeIntervalSince(suspended) < 120, "a console-only resume waited for SSH")

        try box.check(["rm", "--force", "live"])
        #expect(!FileManager.default.fileExists(atPath: instance))
        #expect(FileManager.default.fileExists(atPath: iso))
        #expect(try Self.sha256(iso) == before, "the ISO is never written")
    }

    /// 16-bit code for an El Torito no-emulation BIOS entry: prints "WISP BIOS CD BOOT" to
    /// COM1 (the serial console) and halts. Position-independent: `call`/`pop` finds the text.
    static let biosBootCode: [UInt8] = [
        0x0E, 0x1F,              // push cs; pop ds
        0xE8, 0x00, 0x00,        // call next
        0x5E,                    // next: pop si
        0x83, 0xC6, 0x13,        // add si, text - next
        0xBA, 0xF8, 0x03,        // mov dx, 0x3f8
        0xAC,                    // loop: lodsb
        0x84, 0xC0,              // test al, al
        0x74, 0x03,              // jz done
        0xEE,                    // out dx, al
        0xEB, 0xF8,              // jmp loop
        0xFA, 0xF4, 0xEB, 0xFC,  // done: cli; hlt; jmp done
    ] + Array("WISP BIOS CD BOOT\r\n".utf8) + [0]

    /// The firmware paths: an ISO on which Wisp finds no kernel (its boot files are the El
    /// Torito EFI image's EFI/BOOT/BOOTX64.EFI, here the test image's EFI-stub kernel, and a
    /// BIOS entry's few bytes of code) is booted by OVMF from the CD-ROM drive, as OVMF's own
    /// boot log on the serial console says; with --boot bios SeaBIOS runs the BIOS entry.
    @Test(.timeLimit(.minutes(20))) func isoWithoutAKernelBootsThroughTheFirmwareFromTheCDROM() throws {
        let box = try BootTests.Sandbox()
        defer { box.cleanUp() }
        let kernels = box.dir.file("kernel")
        try ToolRunner.check(box.wisp, ["kernel", "extract", box.image, "-o", kernels])
        let vmlinuz = try #require(try FileManager.default.contentsOfDirectory(atPath: kernels).first { $0.hasPrefix("vmlinuz") })
        let tree = box.dir.file("tree")
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        let efi = tree + "/efi.img"
        let mtools = ["MTOOLS_SKIP_CHECK": "1"]
        try ToolRunner.check("mkfs.vfat", ["-C", "-n", "WISPEFI", efi, "20480"])
        try ToolRunner.check("mmd", ["-i", efi, "::/EFI", "::/EFI/BOOT"], environment: mtools)
        try ToolRunner.check("mcopy", ["-i", efi, "\(kernels)/\(vmlinuz)", "::/EFI/BOOT/BOOTX64.EFI"], environment: mtools)
        try Data(Self.biosBootCode + [UInt8](repeating: 0, count: 2048 - Self.biosBootCode.count)).write(to: URL(fileURLWithPath: tree + "/boot.bin"))
        let iso = box.dir.file("uefi.iso")
        try ToolRunner.check("xorriso", ["-as", "mkisofs", "-R", "-J", "-V", "WISP_UEFI", "-c", "boot.cat",
                                         "-b", "boot.bin", "-no-emul-boot", "-boot-load-size", "4",
                                         "-eltorito-alt-boot", "-e", "efi.img", "-no-emul-boot", "-o", iso, tree])
        let before = try Self.sha256(iso)

        let started = Date()
        let run = try box.check(["run", "--name", "uefi", "--accel", BootTests.accel, "--memory", "1G", "--disk-size", "1G", iso])
        #expect(run.stderrText.contains("booting through the firmware from the CD-ROM"), "\(run.stderrText)")
        let instance = box.dir.file("data") + "/wisp/instances/uefi"
        let commandLine = try String(contentsOfFile: instance + "/qemu.cmdline", encoding: .utf8)
        #expect(commandLine.contains("if=pflash"), "UEFI: \(commandLine)")
        #expect(commandLine.contains("ide-cd,bus=ide.0,drive=cd0,bootindex=0"))
        #expect(commandLine.contains("virtio-blk-pci,drive=disk0,bootindex=1"))
        var log = ""
        let deadline = Date().addingTimeInterval(600)
        while Date() < deadline {
            log = try box.check(["logs", "uefi"]).stdoutText
            if log.contains("BdsDxe: starting") { break }
            Thread.sleep(forTimeInterval: 2)
        }
        #expect(log.contains("BdsDxe: starting Boot0001 \"UEFI QEMU DVD-ROM"), "\(log.suffix(2000))")
        FileHandle.standardError.write(Data("UEFI ISO: run to OVMF starting the DVD-ROM in \(String(format: "%.1f", Date().timeIntervalSince(started))) s (\(BootTests.accel))\n".utf8))
        try box.check(["rm", "--force", "uefi"])

        // SeaBIOS: no pflash, and the BIOS entry's code writes to the serial console.
        let biosStarted = Date()
        try box.check(["run", "--name", "bios", "--boot", "bios", "--accel", BootTests.accel, "--memory", "256M", "--disk-size", "1G", iso])
        #expect(!(try String(contentsOfFile: box.dir.file("data") + "/wisp/instances/bios/qemu.cmdline", encoding: .utf8)).contains("pflash"))
        var biosLog = ""
        while Date() < deadline {
            biosLog = try box.check(["logs", "bios"]).stdoutText
            if biosLog.contains("WISP BIOS CD BOOT") { break }
            Thread.sleep(forTimeInterval: 1)
        }
        #expect(biosLog.contains("WISP BIOS CD BOOT"), "\(biosLog.suffix(2000))")
        FileHandle.standardError.write(Data("BIOS ISO: run to the El Torito BIOS entry's output in \(String(format: "%.1f", Date().timeIntervalSince(biosStarted))) s\n".utf8))
        try box.check(["rm", "--force", "bios"])
        #expect(try Self.sha256(iso) == before)
    }
}
