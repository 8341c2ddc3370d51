import Foundation
import Testing
import WispCore
import WispTestSupport

/// `wisp image convert REF` and `wisp inspect REF` through the real binary, on a small
/// bootc-style image (a synthetic bzImage and initramfs under /usr/lib/modules/$KVER, an
/// older kernel in /boot, kargs.d files) made by umoci and skopeo: qemu-img checks the
/// qcow2, and `wisp inspect` / `wisp kernel extract` on the output find Wisp's BLS entry.
@Suite struct ImageConvertContainerTests {
    static func makeImage(in dir: TemporaryDirectory, kernel: Bool) throws -> String {
        let root = dir.file(kernel ? "root" : "bare")
        func put(_ path: String, _ bytes: [UInt8]) throws {
            let full = "\(root)/\(path)"
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: full))
        }
        try put("etc/os-release", Array("NAME=\"Wisp Test\"\nPRETTY_NAME=\"Wisp Test 1\"\nID=wisptest\n".utf8))
        if kernel {
            try put("usr/lib/modules/6.9.2-test/vmlinuz", FakeKernel.bzImage(version: "6.9.2-test"))
            try put("usr/lib/modules/6.9.2-test/initramfs.img", Array(repeating: 7, count: 4096))
            try put("boot/vmlinuz-6.1.0-old", FakeKernel.bzImage(version: "6.1.0-old"))
            try put("usr/lib/bootc/kargs.d/00-base.toml", Array("kargs = [\"console=ttyS0\", 'mitigations=auto']\n".utf8))
            try put("usr/lib/bootc/kargs.d/50-other.toml", Array("kargs = [\"never\"]\nmatch-architectures = [\"s390x\"]\n".utf8))
        }
        let layout = dir.file(kernel ? "layout" : "bare-layout")
        try ToolRunner.check("umoci", ["init", "--layout", layout])
        try ToolRunner.check("umoci", ["new", "--image", layout + ":v1"])
        try ToolRunner.check("umoci", ["insert", "--image", layout + ":v1", root, "/"])
        let archive = dir.file(kernel ? "image.tar" : "bare.tar")
        try ToolRunner.check("skopeo", ["copy", "--quiet", "oci:\(layout):v1", "oci-archive:\(archive):v1"])
        return archive
    }

    @Test func convertsToABootableQcow2ThatInspectionBoots() throws {
        let dir = try TemporaryDirectory("wisp-convert-oci")
        let archive = try Self.makeImage(in: dir, kernel: true)
        let environment = ["XDG_CACHE_HOME": dir.file("cache"), "HOME": dir.path]
        let out = dir.file("disk.qcow2")
        let converted = try WispBinary.run(["image", "convert", "oci-archive:\(archive):v1", "-O", "qcow2", out], environment: environment)
        #expect(converted.status == 0, "\(converted.stderrText)")
        try ToolRunner.check("qemu-img", ["check", out])
        let info = try ToolRunner.check("qemu-img", ["info", "--output=json", out]).stdoutText
        #expect(info.contains("\"format\": \"qcow2\""))

        let inspected = try WispBinary.check(["inspect", "--json", out], environment: environment)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(inspected.stdoutText.utf8)) as? [String: Any])
        let entries = try #require(report["boot-entries"] as? [[String: Any]])
        let index = try #require(report["default-entry"] as? Int)
        let entry = entries[index]
        #expect(entry["kernel"] as? String == "/usr/lib/modules/6.9.2-test/vmlinuz", "the newest kernel, bootc's layout")
        #expect(entry["initrds"] as? [String] == ["/usr/lib/modules/6.9.2-test/initramfs.img"])
        let filesystems = try #require(report["filesystems"] as? [[String: Any]])
        let uuid = try #require(filesystems.first?["uuid"] as? String)
        #expect(entry["command-line"] as? String == "root=UUID=\(uuid) rw console=ttyS0 mitigations=auto")

        try WispBinary.check(["kernel", "extract", out, "-o", dir.file("boot")], environment: environment)
        let cmdline = try String(contentsOfFile: dir.file("boot/cmdline"), encoding: .utf8)
        #expect(cmdline.trimmingCharacters(in: .whitespacesAndNewlines) == "root=UUID=\(uuid) rw console=ttyS0 mitigations=auto")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("boot/vmlinuz"))) == Data(FakeKernel.bzImage(version: "6.9.2-test")))

        // inspect REF reads the same cached disk: the image's side and the disk's.
        let direct = try WispBinary.check(["inspect", "--json", "oci-archive:\(archive):v1"], environment: environment)
        let both = try #require(try JSONSerialization.jsonObject(with: Data(direct.stdoutText.utf8)) as? [String: Any])
        let container = try #require(both["container"] as? [String: Any])
        #expect(container["kernel-arguments"] as? [String] == ["console=ttyS0", "mitigations=auto"])
        #expect(container["filesystem-uuid"] as? String == uuid, "the same image gives the same disk")
        #expect((container["kernels"] as? [[String: Any]])?.count == 2)
        let cached = try FileManager.default.contentsOfDirectory(atPath: dir.file("cache/wisp/images/oci"))
        #expect(cached.filter { $0.hasSuffix(".raw") }.count == 1, "\(cached)")
    }

    @Test func anImageWithoutAKernelWarnsOrIsRefusedWithBootable() throws {
        let dir = try TemporaryDirectory("wisp-convert-oci")
        let archive = try Self.makeImage(in: dir, kernel: false)
        let environment = ["XDG_CACHE_HOME": dir.file("cache"), "HOME": dir.path]
        let refused = try WispBinary.run(["image", "convert", "--bootable", "oci-archive:\(archive)", "-O", "raw", dir.file("r.raw")], environment: environment)
        #expect(refused.status == 1 && refused.stderrText.contains("no kernel"), "\(refused.stderrText)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("r.raw")))
        let warned = try WispBinary.run(["image", "convert", "oci-archive:\(archive)", "-O", "raw", dir.file("w.raw")], environment: environment)
        #expect(warned.status == 0 && warned.stderrText.contains("warning:") && warned.stderrText.contains("not bootable"), "\(warned.stderrText)")
        let listed = try WispBinary.check(["fs", "cat", dir.file("w.raw"), "/etc/os-release"], environment: environment)
        #expect(listed.stdoutText.contains("ID=wisptest"))
    }
}
