import DiskImage
import GuestInspect
import Foundation
import Machine
import Testing
import WispCore
import WispTestSupport
@testable import WispKit

/// What a guest without cloud-init needs before Wisp boots it with systemd credentials
/// (sshd, systemd 252's provision.conf), read from an ext4 made by mkfs.ext4 -d; and the
/// serial line that says its sshd failed.
@Suite struct CredentialProvisioningGapTests {
    static func disk(_ files: [String], in dir: TemporaryDirectory) throws -> BackingChain {
        let tag = UUID().uuidString
        let root = dir.file("root-\(tag)")
        // An OS root is what the guest view is built on.
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try Data("ID=test\nVERSION_ID=1\n".utf8).write(to: URL(fileURLWithPath: root + "/etc/os-release"))
        for file in files {
            try FileManager.default.createDirectory(atPath: (root + file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data("x".utf8).write(to: URL(fileURLWithPath: root + file))
        }
        let image = dir.file("disk-\(tag).raw")
        try ToolRunner.check("mkfs.ext4", ["-q", "-d", root, image, "16M"])
        return try BackingChain.resolve(path: image, policy: .confinedToImageDirectory)
    }

    static func inspector(_ files: [String], in dir: TemporaryDirectory) throws -> GuestInspector {
        try GuestInspector(disk: try DiskImageFile.open(try disk(files, in: dir)))
    }

    @Test func eachMissingPieceIsNamed() throws {
        let dir = try TemporaryDirectory("wisp-gap")
        let systemd = "/usr/lib/systemd/systemd", provision = "/usr/lib/tmpfiles.d/provision.conf", sshd = "/usr/sbin/sshd"
        let noSSHD = RunIntegration.credentialProvisioningGap(try Self.inspector([systemd, provision], in: dir), name: "img")
        #expect(noSSHD?.contains("img has no sshd") == true, "\(noSSHD ?? "nil")")
        let noSystemd = RunIntegration.credentialProvisioningGap(try Self.inspector([sshd], in: dir), name: "img")
        #expect(noSystemd?.contains("no systemd") == true, "\(noSystemd ?? "nil")")
        let oldSystemd = RunIntegration.credentialProvisioningGap(try Self.inspector([sshd, systemd], in: dir), name: "img")
        #expect(oldSystemd?.contains("older than 252") == true, "\(oldSystemd ?? "nil")")
        #expect(RunIntegration.credentialProvisioningGap(try Self.inspector([sshd, systemd, provision], in: dir), name: "img") == nil)
    }

    @Test func sshServiceFailureLines() {
        let debian = "[  OK  ] Started systemd-logind.service\n[FAILED] Failed to start ssh.service - OpenBSD Secure Shell server.\nSee 'systemctl status ssh.service' for details.\n"
        #expect(BootPhase.sshServiceFailure(in: debian) == "[FAILED] Failed to start ssh.service - OpenBSD Secure Shell server.")
        let fedora = "[FAILED] Failed to start sshd.service - OpenSSH server daemon.\n"
        #expect(BootPhase.sshServiceFailure(in: fedora) != nil)
        #expect(BootPhase.sshServiceFailure(in: "[FAILED] Failed to start chronyd.service\n[  OK  ] Started ssh.service\n") == nil)
    }

    @Test func userKernelArgumentsGoLast() {
        let direct = BootMethod.direct(DirectBoot(kernel: "k", initrd: nil, commandLine: "root=UUID=x rw console=ttyS0,115200"))
        guard case .direct(let d) = InstanceCreator.appendingUserArguments(direct, ["a=1", "b"]) else { Issue.record("not direct"); return }
        #expect(d.commandLine == "root=UUID=x rw console=ttyS0,115200 a=1 b")
        let firmware = BootMethod.firmware(UEFIFirmware(code: "c", vars: "v"))
        #expect(InstanceCreator.appendingUserArguments(firmware, ["a"]) == firmware)
    }
}
