import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// What Wisp writes as VHD, VHDX and VDI: qemu-img check passes, qemu-img info shows the
/// format and subformat asked for, qemu-img compare finds the source's content.
@Suite struct VhdWriteTests {
    static func qemuInfo(_ path: String, format: String) throws -> [String: Any] {
        let r = try Qemu.imgArgs(["info", "--output=json", "-f", format, path])
        return try JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [String: Any] ?? [:]
    }

    static func source(in dir: TemporaryDirectory, size: String = "40M") throws -> String {
        let src = dir.file("src.qcow2")
        try Qemu.img("create", "-f", "qcow2", src, size)
        try VhdReadTests.fill(src, format: "qcow2")
        return src
    }

    @Test(arguments: [
        ("vhd", "vpc", BlockMappedWriteOptions(), "dynamic"),
        ("vhd", "vpc", BlockMappedWriteOptions(preallocated: true), "fixed"),
        ("vhd", "vpc", BlockMappedWriteOptions(forceSize: true), "dynamic"),
        ("vhdx", "vhdx", BlockMappedWriteOptions(), "dynamic"),
        ("vhdx", "vhdx", BlockMappedWriteOptions(preallocated: true, blockSize: 1 << 20), "fixed"),
        ("vhdx", "vhdx", BlockMappedWriteOptions(blockSize: 1 << 20, logSize: 4 << 20), "dynamic"),
        ("vdi", "vdi", BlockMappedWriteOptions(), "dynamic"),
        ("vdi", "vdi", BlockMappedWriteOptions(preallocated: true), "static"),
    ])
    func convertJudgedByQemu(format: String, qemu: String, options: BlockMappedWriteOptions, subformat: String) throws {
        let dir = try TemporaryDirectory()
        let src = try Self.source(in: dir)
        let out = dir.file("out.\(format)")
        var convert = ConvertOptions(format: ImageFormat(rawValue: format) ?? .raw)
        convert.blockMapped = options
        try ImageConverter.convert(input: try DiskImageFile.open(src), to: out, options: convert)
        let check = try ToolRunner.run("qemu-img", ["check", "-f", qemu, out])
        // qemu-img check supports vpc and vdi and vhdx (vpc: "does not support checks", exit 63).
        #expect(check.status == 0 || check.status == 63, "\(check.stdoutText)\(check.stderrText)")
        let info = try Self.qemuInfo(out, format: qemu)
        #expect(info["format"] as? String == qemu)
        let r = try ToolRunner.run("qemu-img", ["compare", "-f", "qcow2", "-F", qemu, src, out])
        #expect(r.status == 0, "\(r.stdoutText)\(r.stderrText)")
        // Wisp reads its own output the same.
        let back = try DiskImageFile.open(out)
        #expect((back as? BlockMappedImage)?.subformat == subformat)
        try Qemu.expectReadsIdentical(out, in: dir, qemuFormat: qemu)
        if subformat == "fixed" && format == "vhd" {
            let st = try FileBlockDevice(path: out).size
            #expect(st == back.size + 512)
        }
    }

    /// The Azure rule: fixed VHD, size rounded up to a whole MiB, exact current_size.
    @Test func azure() throws {
        let dir = try TemporaryDirectory()
        let src = dir.file("odd.raw")
        try Qemu.img("create", "-f", "raw", src, "10000000")
        try Qemu.io(src, format: "raw", "write -P 0x42 0 1M")
        let out = dir.file("azure.vhd")
        var convert = ConvertOptions(format: .vhd)
        convert.blockMapped.azure = true
        try ImageConverter.convert(input: try DiskImageFile.open(src), to: out, options: convert)
        let info = try Self.qemuInfo(out, format: "vpc")
        let size = (info["virtual-size"] as? NSNumber)?.uint64Value
        #expect(size == 10 << 20)
        #expect(try FileBlockDevice(path: out).size == (10 << 20) + 512)
        let footer = try VhdFooter.parse(try FileBlockDevice(path: out).read(at: 10 << 20, count: 512), name: out, at: 0)
        #expect(footer.diskType == .fixed && footer.currentSize == 10 << 20)
    }

    /// Without force_size the size is rounded up to a CHS geometry exactly as qemu-img does.
    @Test(arguments: [1_000_000, 3_333_333, 127 << 20, 8000 << 20] as [UInt64])
    func chsRounding(size: UInt64) throws {
        let dir = try TemporaryDirectory()
        let theirs = dir.file("q.vhd")
        try Qemu.img("create", "-f", "vpc", theirs, String(size))
        let ours = dir.file("w.vhd")
        try ImageConverter.createEmpty(path: ours, virtualSize: size, format: .vhd, options: BlockMappedWriteOptions())
        let q = (try Self.qemuInfo(theirs, format: "vpc")["virtual-size"] as? NSNumber)?.uint64Value
        let w = (try Self.qemuInfo(ours, format: "vpc")["virtual-size"] as? NSNumber)?.uint64Value
        #expect(q == w)
        #expect(try DiskImageFile.open(ours).size == w)
    }

    @Test(arguments: ["vpc", "vhdx", "vdi"])
    func realData(format: String) throws {
        guard let source = ProcessInfo.processInfo.environment["WISP_TEST_IMAGE"], !source.isEmpty else { return }
        let dir = try TemporaryDirectory()
        let out = dir.file("real.\(format)")
        let convert = ConvertOptions(format: format == "vpc" ? .vhd : ImageFormat(rawValue: format) ?? .raw)
        try ImageConverter.convert(input: try DiskImageFile.open(source, policy: .selfContained), to: out, options: convert)
        let r = try ToolRunner.run("qemu-img", ["compare", "-F", format, source, out])
        #expect(r.status == 0, "\(r.stdoutText)\(r.stderrText)")
    }
}
