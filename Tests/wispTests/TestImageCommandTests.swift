import Foundation
import Testing
import WispCore
import WispTestSupport

/// `wisp kernel extract` and `wisp inspect` on the real Debian test image
/// (scripts/make-test-image): `wisp kernel extract` must write
/// exactly the kernel and initrd its root filesystem holds (debugfs is the judge, reading the
/// ext4 partition of a qemu-img-converted raw copy), and the command line its grub.cfg gives.
@Suite struct TestImageCommandTests {
    @Test func extractMatchesTheRootFilesystemByteForByte() throws {
        let image = try TestImage.path()
        let dir = try TemporaryDirectory("wisp-extract-real")
        let out = dir.file("out")
        let result = try WispBinary.run(["kernel", "extract", image, "-o", out, "--json"])
        try #require(result.status == 0, "wisp kernel extract failed: \(result.stderrText)")
        let json = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        let plan = try #require(json["plan"] as? [String: Any])
        let guestKernel = try #require(plan["kernel-path"] as? String)
        let guestInitrds = try #require(plan["initrd-paths"] as? [String])
        #expect(guestKernel.hasPrefix("/boot/vmlinuz-"))
        #expect(guestInitrds.count == 1)

        // The judge: qemu-img converts, debugfs reads partition 1 at its offset.
        let raw = dir.file("disk.raw")
        try ToolRunner.check("qemu-img", ["convert", "-O", "raw", image, raw])
        let info = try ToolRunner.check("sgdisk", ["-i", "1", raw]).stdoutText
        let firstSector = try #require(info.split(separator: "\n").first { $0.hasPrefix("First sector:") }
            .flatMap { $0.split(separator: " ").dropFirst(2).first }.flatMap { Int($0) })
        let p1 = dir.file("p1.ext4")
        try ToolRunner.check("dd", ["if=\(raw)", "of=\(p1)", "bs=512", "skip=\(firstSector)", "conv=sparse", "status=none"])
        func dump(_ guestPath: String) throws -> [UInt8] {
            let target = dir.file("judge-" + (guestPath.split(separator: "/").last.map(String.init) ?? "file"))
            try ToolRunner.check("debugfs", ["-R", "dump \(guestPath) \(target)", p1])
            return Array(try Data(contentsOf: URL(fileURLWithPath: target)))
        }
        let kernelJudge = try dump(guestKernel)
        #expect(kernelJudge.count > 1 << 20)
        #expect(try WispBinary.bytes(try #require(json["kernel-path"] as? String)) == kernelJudge)
        #expect(try WispBinary.bytes(try #require(json["initrd-path"] as? String)) == (try dump(guestInitrds[0])))

        // The command line is the first menu entry's linux line, arguments after the path.
        let grubCfg = String(decoding: try dump("/boot/grub/grub.cfg"), as: UTF8.self)
        let linuxLine = try #require(grubCfg.split(separator: "\n").first {
            $0.trimmingCharacters(in: .whitespaces).hasPrefix("linux")
        })
        let args = linuxLine.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst(2).joined(separator: " ")
        #expect(json["command-line"] as? String == args)
        #expect(try String(contentsOfFile: out + "/cmdline", encoding: .utf8) == args + "\n")
    }

    @Test func inspectReportsTheRealImage() throws {
        let image = try TestImage.path()
        let result = try WispBinary.run(["inspect", image, "--json"])
        try #require(result.status == 0, "wisp inspect failed: \(result.stderrText)")
        let json = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        #expect(json["partition-scheme"] as? String == "gpt")
        #expect(json["root-partition"] as? Int == 1)
        let os = try #require(json["os-release"] as? [String: Any])
        #expect(os["id"] as? String == "debian")
        #expect(os["version-id"] as? String == "12")
        let filesystems = try #require(json["filesystems"] as? [[String: Any]])
        #expect(filesystems.first { $0["partition"] as? Int == 1 }?["uuid"] as? String == "57495350-0001-4000-8000-000000000001")
        let kernel = try #require(json["kernel"] as? [String: Any])
        #expect(kernel["format"] as? String == "bzImage")
        #expect(kernel["architecture"] as? String == "x86_64")
        #expect(kernel["qemu-direct-boot"] as? Bool == true)
        #expect((kernel["version-string"] as? String)?.contains("cloud-amd64") == true)
    }
}
