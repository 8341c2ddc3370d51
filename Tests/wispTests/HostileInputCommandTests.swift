import Foundation
import Testing
import WispCore
import WispTestSupport

/// Issue 16 through the built binary: the failures that printed nothing (a trap) or raw
/// Foundation text now end in one `wisp:` sentence and exit status 1.
@Suite struct HostileInputCommandTests {
    /// Failure 1: a GPT header whose last usable sector is 2^64-1 (CRC fixed up) killed every
    /// command. sgdisk makes the disk; the field is changed and the CRC recomputed.
    @Test func imageInfoSurvivesAHostileGPTHeader() throws {
        let dir = try TemporaryDirectory("hostilegpt")
        let disk = dir.file("gpt.img")
        try ToolRunner.check("truncate", ["-s", "64M", disk])
        try ToolRunner.check("sgdisk", ["-n", "1:2048:+10M", "-t", "1:8300", disk])
        let device = try FileBlockDevice(path: disk, writable: true)
        var header = try device.read(at: 512, count: 92)
        header.putLE64(UInt64.max, at: 48)
        header.putLE32(0, at: 16)
        header.putLE32(CRC32.checksum(header), at: 16)
        try device.write(header, at: 512)
        let result = try WispBinary.run(["image", "info", disk])
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(result.stdoutText.contains("past the end of the disk"), "\(result.stdoutText)")
    }

    /// Failure 2 end to end: `seed --validate` of 5,000 brackets opened and closed on one line.
    @Test func seedValidateRefusesDeepFlowNesting() throws {
        let dir = try TemporaryDirectory("hostileyaml")
        let path = dir.file("user-data")
        let text = "#cloud-config\nx: " + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000) + "\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        let result = try WispBinary.run(["seed", "--validate", path])
        #expect(result.status == 1)
        #expect((result.stdoutText + result.stderrText).contains("nests 513 levels deep at line 2"), "\(result.stdoutText)\(result.stderrText)")
    }

    /// `kernel extract -o` onto an existing file printed NSCocoaErrorDomain Code=516.
    @Test func kernelExtractOntoAFileSaysSoInASentence() throws {
        let layout = try GuestLayout("extract-onto-file")
        let disk = try CloudImageLayouts.debianDisk(layout)
        let existing = layout.dir.file("boot")
        try Data("not a directory\n".utf8).write(to: URL(fileURLWithPath: existing))
        let result = try WispBinary.run(["kernel", "extract", disk, "-o", existing])
        #expect(result.status == 1)
        #expect(result.stderrText == "wisp: \(existing): exists and is not a directory\n", "\(result.stderrText)")
        #expect(try String(contentsOfFile: existing, encoding: .utf8) == "not a directory\n")
    }
}
