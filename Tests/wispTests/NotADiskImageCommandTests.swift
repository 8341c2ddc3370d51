import Foundation
import Testing
import WispCore
import WispTestSupport

/// Every command that takes an image refuses a file that is no disk image with the same
/// one sentence, and `wisp run` does so before it creates anything or starts QEMU.
@Suite struct NotADiskImageCommandTests {
    @Test func everyCommandRefusesATextFileInOneSentence() throws {
        let dir = try TemporaryDirectory("wisp-not-a-disk")
        let notes = dir.file("notes.txt")
        try Data(String(repeating: "not a disk\n", count: 100).utf8).write(to: URL(fileURLWithPath: notes))
        let environment = ["XDG_DATA_HOME": dir.file("data"), "XDG_CACHE_HOME": dir.file("cache"), "HOME": dir.path]
        let commands: [[String]] = [
            ["image", "info", notes], ["image", "check", notes], ["image", "convert", "-O", "qcow2", notes, dir.file("out.qcow2")],
            ["inspect", notes], ["kernel", "extract", notes, "-o", dir.file("k")], ["fs", "ls", notes, "/"],
            ["run", "--accel", "tcg", "--timeout", "30", notes],
        ]
        for command in commands {
            let started = Date()
            let r = try WispBinary.run(command, environment: environment)
            let seconds = Date().timeIntervalSince(started)
            #expect(r.status == 1, "\(command): exit \(r.status)")
            #expect(r.stderrText == "wisp: \(notes) is a text file, not a disk image\n", "\(command): \(r.stderrText)")
            // Fails fast: no QEMU, no download, no instance.
            #expect(seconds < 10, "\(command) took \(seconds) s")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("out.qcow2")))
        let instances = (try? FileManager.default.contentsOfDirectory(atPath: dir.file("data") + "/wisp/instances")) ?? []
        #expect(instances.filter { !$0.hasPrefix(".") }.isEmpty, "\(instances)")
    }

    @Test func compressedDownloadsSayHowToDecompress() throws {
        let dir = try TemporaryDirectory("wisp-not-a-disk")
        let raw = dir.file("disk.raw")
        try ToolRunner.check("truncate", ["-s", "2M", raw])
        try ToolRunner.check("sgdisk", ["-q", "-n", "1:2048:", raw])
        try ToolRunner.check("xz", ["-k", "-0", raw])
        let r = try WispBinary.run(["image", "info", raw + ".xz"])
        #expect(r.status == 1)
        #expect(r.stderrText == "wisp: \(raw).xz is an xz-compressed file, not a disk image; decompress it first (xz -dk \(raw).xz)\n", "\(r.stderrText)")
        // A format Wisp does not read is named.
        let qed = dir.file("disk.qed")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qed", qed, "8M"])
        let q = try WispBinary.run(["image", "convert", "-O", "raw", qed, dir.file("x.raw")])
        #expect(q.status == 1 && q.stderrText.contains("is a QED disk image, which Wisp does not read"), "\(q.stderrText)")
    }
}
