import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// Everything Wisp writes as VMDK passes `qemu-img check`, shows the subformat asked for
/// in `qemu-img info`, and equals its source under `qemu-img compare`.
@Suite struct VmdkWriteTests {
    static func judge(_ image: String, source: String, subformat: String) throws {
        try Qemu.check(image)
        try Qemu.compare(source, image)
        let info = try Qemu.imgArgs(["info", "--output=json", image]).stdoutText
        #expect(info.contains("\"create-type\": \"\(subformat)\""), "\(info)")
        #expect(info.contains("\"format\": \"vmdk\""))
    }

    @Test(arguments: VmdkCreateOptions.Subformat.allCases)
    func convertFromRaw(subformat: VmdkCreateOptions.Subformat) throws {
        let dir = try TemporaryDirectory()
        let raw = try VmdkReadTests.source(in: dir, size: "40961k")  // not a whole number of grains
        let image = dir.file("out.vmdk")
        var options = ConvertOptions(format: .vmdk)
        options.vmdk = VmdkCreateOptions(subformat: subformat, adapterType: .lsilogic, hardwareVersion: 6)
        try ImageConverter.convert(input: try DiskImageFile.open(raw), to: image, options: options)
        try Self.judge(image, source: raw, subformat: subformat.rawValue)
        try Qemu.expectReadsIdentical(image, in: dir)
        let text = try String(contentsOfFile: image, encoding: .isoLatin1)
        #expect(text.contains("ddb.adapterType = \"lsilogic\""))
        #expect(text.contains("ddb.virtualHWVersion = \"6\""))
    }

    @Test(arguments: VmdkCreateOptions.Subformat.allCases)
    func createEmpty(subformat: VmdkCreateOptions.Subformat) throws {
        let dir = try TemporaryDirectory()
        let image = dir.file("empty.vmdk")
        try VmdkImage.create(path: image, virtualSize: 5 << 30, options: VmdkCreateOptions(subformat: subformat))
        let raw = dir.file("empty.raw")
        try Qemu.img("create", "-f", "raw", raw, "5G")
        try Self.judge(image, source: raw, subformat: subformat.rawValue)
        #expect(try FileBlockDevice(path: image).size < 4 << 20)
    }

    @Test func incompressibleGrainsInStream() throws {
        let dir = try TemporaryDirectory()
        let raw = dir.file("random.raw")
        var rng = SplitMix64(seed: 7)
        var bytes = [UInt8](repeating: 0, count: 3 << 20)
        for i in 0..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
        try Data(bytes).write(to: URL(fileURLWithPath: raw))
        let image = dir.file("random.vmdk")
        var options = ConvertOptions(format: .vmdk)
        options.vmdk.subformat = .streamOptimized
        try ImageConverter.convert(input: try DiskImageFile.open(raw), to: image, options: options)
        try Self.judge(image, source: raw, subformat: "streamOptimized")
    }

    @Test func options() throws {
        let o = try VmdkCreateOptions(qemuOptions: ["subformat=streamOptimized,adapter_type=buslogic", "compat6"])
        #expect(o == VmdkCreateOptions(subformat: .streamOptimized, adapterType: .buslogic, hardwareVersion: 6))
        #expect(throws: WispError.self) { try VmdkCreateOptions(qemuOptions: ["subformat=vmfs"]) }
        #expect(throws: WispError.self) { try VmdkCreateOptions(qemuOptions: ["adapter_type=scsi"]) }
    }

    @Test func realImageStreamOptimized() throws {
        let testImage = try TestImage.path()
        let dir = try TemporaryDirectory()
        let image = dir.file("debian.vmdk")
        var options = ConvertOptions(format: .vmdk)
        options.vmdk.subformat = .streamOptimized
        try ImageConverter.convert(input: try DiskImageFile.open(testImage), to: image, options: options)
        try Self.judge(image, source: testImage, subformat: "streamOptimized")
    }
}
