import Foundation
import Testing
import WispCore
import WispTestSupport

/// The built `wisp` on OVAs and Vagrant boxes: `image export` writes an OVA that tar,
/// sha256sum and qemu-img accept, and `image convert`, `image info` and `fs` read it (and a
/// box) back through the cache; qemu-img compares the results with the original.
@Suite struct MachineArchiveCommandTests {
    static func environment(_ dir: TemporaryDirectory) -> [String: String] {
        ["HOME": dir.path, "XDG_CACHE_HOME": dir.file("cache"), "XDG_DATA_HOME": dir.file("data")]
    }

    /// A 16 MiB disk holding an ext4 filesystem (no partition table) with one file.
    static func ext4Disk(_ dir: TemporaryDirectory) throws -> String {
        let tree = dir.file("tree")
        try FileManager.default.createDirectory(atPath: "\(tree)/etc", withIntermediateDirectories: true)
        try Data("hello from the archive\n".utf8).write(to: URL(fileURLWithPath: "\(tree)/etc/motd"))
        let raw = dir.file("fs.raw")
        try ToolRunner.check("truncate", ["-s", "16M", raw])
        try ToolRunner.check("mkfs.ext4", ["-q", "-F", "-d", tree, raw])
        let qcow2 = dir.file("fs.qcow2")
        try ToolRunner.check("qemu-img", ["convert", "-q", "-f", "raw", "-O", "qcow2", raw, qcow2])
        return qcow2
    }

    @Test func exportThenReadBackThroughEveryVerb() throws {
        let dir = try TemporaryDirectory("wisp-ova-cli")
        let wisp = try ImageBackingCommandTests.wisp()
        let env = Self.environment(dir)
        let disk = try Self.ext4Disk(dir)
        let ova = dir.file("app.ova")
        try ToolRunner.check(wisp, ["image", "export", "--cpus", "2", "--memory", "512M", disk, ova], environment: env)
        // tar extracts it, sha256sum agrees with the manifest, qemu-img reads the VMDK.
        let out = dir.file("x")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try ToolRunner.check("tar", ["-C", out, "-xf", ova])
        let manifest = try String(contentsOfFile: "\(out)/app.mf", encoding: .utf8)
        let sums = manifest.replacingOccurrences(of: #"SHA256\((.*)\)= (.*)"#, with: "$2  $1", options: .regularExpression)
        try ToolRunner.check("sha256sum", ["-c", "--quiet", "-"], input: Data(sums.utf8), currentDirectory: out)
        try ToolRunner.check("qemu-img", ["check", "-q", "\(out)/app-disk1.vmdk"])
        try ToolRunner.check("qemu-img", ["compare", "-q", disk, "\(out)/app-disk1.vmdk"])

        // Read back: convert, info and fs take the OVA like any image.
        let back = dir.file("back.raw")
        try ToolRunner.check(wisp, ["image", "convert", "-O", "raw", ova, back], environment: env)
        try ToolRunner.check("qemu-img", ["compare", "-q", "-f", "qcow2", "-F", "raw", disk, back])
        let info = try ToolRunner.check(wisp, ["image", "info", "--json", ova], environment: env).stdoutText
        #expect(info.contains("\"format\" : \"qcow2\""), "\(info)")
        let motd = try ToolRunner.check(wisp, ["fs", "cat", ova, "/etc/motd"], environment: env).stdoutText
        #expect(motd == "hello from the archive\n")
        #expect(FileManager.default.fileExists(atPath: dir.file("cache/wisp/images/archives")))

        // A libvirt box of the same disk, read by the same verbs.
        let content = dir.file("box.d")
        try FileManager.default.createDirectory(atPath: content, withIntermediateDirectories: true)
        try ToolRunner.check("cp", [disk, "\(content)/box.img"])
        try Data(#"{"provider":"libvirt","format":"qcow2","virtual_size":1}"#.utf8).write(to: URL(fileURLWithPath: "\(content)/metadata.json"))
        let box = dir.file("fs.box")
        try ToolRunner.check("tar", ["-C", content, "-czf", box, "metadata.json", "box.img"])
        let fromBox = dir.file("box.raw")
        try ToolRunner.check(wisp, ["image", "convert", "-O", "raw", box, fromBox], environment: env)
        try ToolRunner.check("qemu-img", ["compare", "-q", "-f", "qcow2", "-F", "raw", disk, fromBox])
        #expect(try ToolRunner.check(wisp, ["fs", "cat", box, "/etc/motd"], environment: env).stdoutText == "hello from the archive\n")

        // Usage errors are sentences with status 64.
        let bad = try ToolRunner.run(wisp, ["image", "export", ova], environment: env)
        #expect(bad.status == 64, "\(bad.stderrText)")
    }
}
