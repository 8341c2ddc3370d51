import DiskImage
import FileSystems
import Foundation
import GuestInspect
import Machine
import Testing
import WispCore
import WispTestSupport
@testable import WispKit

/// What `wisp run` reads of an ISO before booting it, on media xorriso makes: that it is an
/// ISO (a qcow2 or a raw disk is not), whether its system shows cloud-init (files on the
/// medium, Ubuntu's casper manifests, Debian live's filesystem.packages), and which firmware
/// boots its El Torito entries on each board.
@Suite struct ISOMediumTests {
    /// An ISO of `files` (path: content), with El Torito entries when asked.
    static func iso(_ files: [String: String], bios: Bool = false, efi: Bool = false, in dir: TemporaryDirectory) throws -> BackingChain {
        let tree = dir.file("tree-\(UUID().uuidString)")
        let fm = FileManager.default
        try fm.createDirectory(atPath: tree, withIntermediateDirectories: true)
        for (path, text) in files {
            let full = tree + "/" + path
            try fm.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: full))
        }
        var arguments = ["-as", "mkisofs", "-R", "-J", "-V", "WISP_TEST"]
        if bios {
            try Data(repeating: 0x90, count: 2048).write(to: URL(fileURLWithPath: tree + "/boot.bin"))
            arguments += ["-b", "boot.bin", "-c", "boot.cat", "-no-emul-boot", "-boot-load-size", "4"]
        }
        if efi {
            try ToolRunner.check("mkfs.vfat", ["-C", "-n", "ESP", tree + "/efi.img", "1440"])
            arguments += bios ? ["-eltorito-alt-boot"] : ["-c", "boot.cat"]
            arguments += ["-e", "efi.img", "-no-emul-boot"]
        }
        let iso = dir.file("m-\(UUID().uuidString).iso")
        try ToolRunner.check("xorriso", arguments + ["-o", iso, tree])
        return try BackingChain.resolve(path: iso, policy: .confined(allowedDirectories: []))
    }

    static func medium(_ chain: BackingChain) throws -> ISOMedium {
        var medium = try #require(ISOMedium.detect(chain))
        medium.read(try? GuestInspector(disk: try DiskImageFile.open(chain)))
        return medium
    }

    @Test func onlyAnISOIsAMedium() throws {
        let dir = try TemporaryDirectory("iso-medium-detect")
        #expect(ISOMedium.detect(try Self.iso(["a.txt": "a"], in: dir)) != nil)
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", dir.file("d.qcow2"), "1M"])
        #expect(ISOMedium.detect(try BackingChain.resolve(path: dir.file("d.qcow2"), policy: .confined(allowedDirectories: []))) == nil)
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "raw", dir.file("d.raw"), "1M"])
        #expect(ISOMedium.detect(try BackingChain.resolve(path: dir.file("d.raw"), policy: .confined(allowedDirectories: []))) == nil)
    }

    @Test func cloudInitOnTheMediumOrInItsPackageLists() throws {
        let dir = try TemporaryDirectory("iso-medium-cloud-init")
        let casper = try Self.medium(try Self.iso(["casper/filesystem.manifest": "bash\t5.2-1\ncloud-init\t24.1.3-0ubuntu3\ncurl\t8.5\n"], in: dir))
        #expect(casper.cloudInitEvidence == "cloud-init is listed in /casper/filesystem.manifest")
        let layered = try Self.medium(try Self.iso(["casper/minimal.standard.live.manifest": "cloud-init 23.4\n"], in: dir))
        #expect(layered.cloudInitEvidence == "cloud-init is listed in /casper/minimal.standard.live.manifest")
        let tree = try Self.medium(try Self.iso(["etc/cloud/cloud.cfg": "datasource_list: [NoCloud]\n"], in: dir))
        #expect(tree.cloudInitEvidence == "/etc/cloud/cloud.cfg is on the medium")
        // A package list without cloud-init: its look-alikes do not count.
        let debianLive = try Self.medium(try Self.iso(["live/filesystem.packages": "cloud-init-base 1\ncloud-utils 0.33\nopenssh-server 1:9.2\n"], in: dir))
        #expect(debianLive.cloudInitEvidence == nil)
        let bare = try Self.medium(try Self.iso(["live/vmlinuz": "k"], in: dir))
        #expect(bare.cloudInitEvidence == nil)
    }

    @Test func firmwareFollowsTheCatalogAndTheBoard() throws {
        let dir = try TemporaryDirectory("iso-medium-firmware")
        let x86 = X86_64Board(), arm = AArch64Board()
        let biosOnly = try Self.medium(try Self.iso([:], bios: true, in: dir))
        #expect(biosOnly.catalog?.entries.map(\.platform) == [.bios])
        #expect(try biosOnly.firmware(asked: .auto, board: x86, image: "b.iso") == .bios)
        #expect(throws: WispError.self) { try biosOnly.firmware(asked: .auto, board: arm, image: "b.iso") }
        #expect(try biosOnly.firmware(asked: .uefi, board: x86, image: "b.iso") == .uefi)

        let both = try Self.medium(try Self.iso([:], bios: true, efi: true, in: dir))
        #expect(try both.firmware(asked: .auto, board: x86, image: "h.iso") == .uefi)
        #expect(try both.firmware(asked: .bios, board: x86, image: "h.iso") == .bios)
        do {
            _ = try both.firmware(asked: .bios, board: arm, image: "h.iso")
            Issue.record("--boot bios on aarch64 must be refused")
        } catch let error as WispError {
            #expect(error.kind == .usage)
        }
        let efiOnly = try Self.medium(try Self.iso([:], efi: true, in: dir))
        #expect(try efiOnly.firmware(asked: .auto, board: arm, image: "e.iso") == .uefi)

        let none = try Self.medium(try Self.iso(["a.txt": "a"], in: dir))
        do {
            _ = try none.firmware(asked: .auto, board: x86, image: "n.iso")
            Issue.record("an ISO with no boot entry and no kernel has nothing to boot")
        } catch let error as WispError {
            #expect(error.kind == .notFound)
        }
    }
}

/// An ephemeral ISO instance's disk has no base: stopping it makes the disk blank again, at
/// its size. Judge: qemu-io writes a pattern, and qemu-img map sees no data after the reset.
@Suite struct ISOEphemeralDiskTests {
    @Test func resetMakesTheBlankDiskBlankAgain() throws {
        let dir = try TemporaryDirectory("iso-ephemeral")
        let files = InstanceFiles(directory: dir.path)
        try RunIntegration.createBlankDisk(files.overlay, size: 64 << 20)
        try ToolRunner.check("qemu-io", ["-f", "qcow2", "-c", "write -P 0x5a 0 1M", files.overlay])
        #expect(try ToolRunner.check("qemu-img", ["map", "--output=json", files.overlay]).stdoutText.contains("\"data\": true"))
        var spec = MachineSpec(cpus: 1, memoryBytes: 256 << 20, disks: [DiskAttachment(path: files.overlay, format: .qcow2)])
        spec.cdrom = dir.file("live.iso")
        let record = InstanceRecord(name: "e", image: "live.iso", baseImagePath: dir.file("live.iso"), spec: spec, bootMode: .uefi,
                                    user: "u", hostname: "e", sshPort: 2222, cloudInit: .disk, osName: nil)
        try InstanceDiskChains.resetOverlay(record, files: files)
        let map = try ToolRunner.check("qemu-img", ["map", "--output=json", files.overlay]).stdoutText
        #expect(!map.contains("\"data\": true"), "\(map)")
        let info = try ToolRunner.check("qemu-img", ["info", "--output=json", files.overlay]).stdoutText
        #expect(info.contains("\"virtual-size\": \(64 << 20)"), "\(info)")
        #expect(!info.contains("backing-filename"))
    }
}
