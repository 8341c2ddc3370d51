import Foundation
import Testing
import WispCore
import WispTestSupport

/// `wisp fs ls` and `wisp fs cat` on a btrfs root laid out like Fedora's (the OS under
/// "root", made by mkfs.btrfs --rootdir; 6.2 has no --compress) and an XFS /boot like
/// Alma's (mkfs.xfs -p protofile), on one GPT disk, through the real binary.
@Suite struct FSLayoutCommandTests {
    static let kernel = (0..<300_000).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 11) }

    static func makeDisk(_ dir: TemporaryDirectory) throws -> String {
        let fm = FileManager.default
        // btrfs: Fedora's subvolume "root" is a top-level directory (btrfs-progs 6.2 makes
        // no subvolumes offline).
        let btrfsTree = dir.file("btrfs-tree")
        try fm.createDirectory(atPath: btrfsTree + "/root/etc", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: btrfsTree + "/home/fedora", withIntermediateDirectories: true)
        try Data("NAME=\"Fedora Linux\"\nID=fedora\nVERSION_ID=41\n".utf8).write(to: URL(fileURLWithPath: btrfsTree + "/root/etc/os-release"))
        try Data(kernel).write(to: URL(fileURLWithPath: btrfsTree + "/root/etc/blob"))
        try fm.createSymbolicLink(atPath: btrfsTree + "/root/etc/system-release", withDestinationPath: "os-release")
        let btrfs = dir.file("root.btrfs")
        try ToolRunner.check("truncate", ["-s", "128M", btrfs])
        try ToolRunner.check("mkfs.btrfs", ["-q", "-f", "-L", "fedora", "--rootdir", btrfsTree, btrfs])
        // XFS /boot from a protofile.
        let xfsTree = dir.file("xfs-tree")
        try fm.createDirectory(atPath: xfsTree, withIntermediateDirectories: true)
        try Data(kernel).write(to: URL(fileURLWithPath: xfsTree + "/vmlinuz"))
        try Data("options $kernelopts\n".utf8).write(to: URL(fileURLWithPath: xfsTree + "/entry.conf"))
        let proto = dir.file("proto")
        try Data("/dev/null\n0 0\nd--755 0 0\n loader d--755 0 0\n  entry.conf ---644 0 0 \(xfsTree)/entry.conf\n $\n vmlinuz ---755 0 0 \(xfsTree)/vmlinuz\n vmlinuz-link l--777 0 0 vmlinuz\n$\n".utf8)
            .write(to: URL(fileURLWithPath: proto))
        let xfs = dir.file("boot.xfs")
        try ToolRunner.check("truncate", ["-s", "300M", xfs])
        try ToolRunner.check("mkfs.xfs", ["-q", "-f", "-L", "boot", "-p", proto, xfs])
        let disk = dir.file("disk.raw")
        try ToolRunner.check("truncate", ["-s", "430M", disk])
        try ToolRunner.check("sgdisk", ["-n", "1:2048:+300M", "-t", "1:8300", "-c", "1:boot",
                                        "-n", "2:0:+128M", "-t", "2:8300", "-c", "2:root", disk])
        try ToolRunner.check("dd", ["if=\(xfs)", "of=\(disk)", "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"])
        try ToolRunner.check("dd", ["if=\(btrfs)", "of=\(disk)", "bs=1M", "seek=301", "conv=notrunc,sparse", "status=none"])
        return disk
    }

    @Test func lsAndCatOnBtrfsAndXFS() throws {
        let dir = try TemporaryDirectory("fs-layouts")
        let disk = try Self.makeDisk(dir)
        let wisp = try FSCommandTests.wisp()
        // btrfs, chosen by label.
        #expect(try ToolRunner.check(wisp, ["fs", "ls", disk, "/", "--partition", "fedora"]).stdoutText == "home\nroot\n")
        #expect(try ToolRunner.check(wisp, ["fs", "ls", disk, "/root/etc", "--partition", "LABEL=fedora"]).stdoutText == "blob\nos-release\nsystem-release\n")
        #expect(try ToolRunner.check(wisp, ["fs", "cat", disk, "/root/etc/system-release", "--partition", "2"]).stdoutText.contains("ID=fedora"))
        #expect(Array(try ToolRunner.check(wisp, ["fs", "cat", disk, "/root/etc/blob", "--partition", "fedora"]).stdout) == Self.kernel)
        // XFS, chosen by PARTLABEL.
        #expect(try ToolRunner.check(wisp, ["fs", "ls", disk, "/", "--partition", "PARTLABEL=boot"]).stdoutText == "loader\nvmlinuz\nvmlinuz-link\n")
        #expect(try ToolRunner.check(wisp, ["fs", "cat", disk, "/loader/entry.conf", "--partition", "1"]).stdoutText == "options $kernelopts\n")
        #expect(Array(try ToolRunner.check(wisp, ["fs", "cat", disk, "/vmlinuz-link", "--partition", "boot"]).stdout) == Self.kernel)
        let long = try ToolRunner.check(wisp, ["fs", "ls", "-l", disk, "/", "--partition", "1"]).stdoutText
        #expect(long.contains("-rwxr-xr-x 1 0 0 300000 "), "\(long)")
        // Without --partition: the guest's tree, rooted in the btrfs "root" directory that
        // holds the OS (no fstab here, so the XFS partition is not mounted).
        #expect(try ToolRunner.check(wisp, ["fs", "ls", disk, "/"]).stdoutText == "etc\n")
        #expect(try ToolRunner.check(wisp, ["fs", "cat", disk, "/etc/system-release"]).stdoutText.contains("ID=fedora"))
    }
}
