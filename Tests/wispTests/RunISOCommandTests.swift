import Foundation
import Testing
import WispCore
import WispTestSupport

/// `wisp run` refusals that need no boot, on an ISO xorriso makes with a GRUB menu naming a
/// kernel: what cannot work with an ISO is refused before any instance is made.
@Suite struct RunISOCommandTests {
    static func liveISO(in dir: TemporaryDirectory) throws -> String {
        let tree = dir.file("tree")
        try FileManager.default.createDirectory(atPath: tree + "/live", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: tree + "/boot/grub", withIntermediateDirectories: true)
        try Data(FakeKernel.bzImage(version: "6.1.0-21-amd64 (debian-kernel@lists.debian.org)")).write(to: URL(fileURLWithPath: tree + "/live/vmlinuz"))
        try Data("menuentry 'Live' {\n  linux /live/vmlinuz boot=live\n}\n".utf8).write(to: URL(fileURLWithPath: tree + "/boot/grub/grub.cfg"))
        let iso = dir.file("live.iso")
        try ToolRunner.check("xorriso", ["-as", "mkisofs", "-R", "-J", "-V", "LIVE", "-o", iso, tree])
        return iso
    }

    @Test func refusedBeforeAnInstanceIsMade() throws {
        let dir = try TemporaryDirectory("wisp-run-iso-refusals")
        let iso = try Self.liveISO(in: dir)
        let environment = ["XDG_DATA_HOME": dir.file("data"), "XDG_CACHE_HOME": dir.file("cache")]
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", dir.file("disk.qcow2"), "1M"])
        let cases: [([String], String)] = [
            (["run", "--accel", "tcg", iso, "--", "true"], "-- CMD runs over SSH, and no cloud-init found on \(iso)"),
            (["run", "--accel", "tcg", "--provision", "systemd", iso], "--provision systemd: an ISO's live system"),
            (["run", "--accel", "tcg", "--boot", "bios", dir.file("disk.qcow2")], "--boot bios boots an ISO image's El Torito BIOS entry"),
            (["run", "--accel", "tcg", "--boot", "bios", "--karg", "quiet", iso], "--karg needs direct kernel boot: it cannot go with --boot bios"),
        ]
        for (arguments, message) in cases {
            let result = try WispBinary.run(arguments, environment: environment)
            #expect(result.status == 64, "\(arguments): \(result.stderrText)")
            #expect(result.stderrText.contains(message), "\(arguments): \(result.stderrText)")
        }
        let instances = (try? FileManager.default.contentsOfDirectory(atPath: dir.file("data") + "/wisp/instances")) ?? []
        #expect(instances.filter { !$0.hasPrefix(".") }.isEmpty, "\(instances)")
    }
}
