import Foundation
import Testing
import WispCore
import WispTestSupport

/// `wisp image check` on VHD, VHDX, VDI and VMDK through the binary: exit 0 when clean,
/// 2 with one ERROR line per corruption, 64 for --repair on anything but qcow2.
@Suite struct ImageCheckCommandTests {
    @Test func foreignFormatsExitStatuses() throws {
        let dir = try TemporaryDirectory("wisp-check")
        for (format, options) in [("vhdx", "subformat=dynamic"), ("vdi", "static=off"), ("vmdk", "subformat=monolithicSparse")] {
            let image = dir.file("clean.\(format)")
            try ToolRunner.check("qemu-img", ["create", "-q", "-f", format, "-o", options, image, "16M"])
            try ToolRunner.check("qemu-io", ["-f", format, "-c", "write -P 7 0 3M", image])
            let r = try WispBinary.run(["image", "check", image])
            #expect(r.status == 0 && r.stdoutText.contains("No errors were found"), "\(format): \(r.status) \(r.stdoutText)\(r.stderrText)")
        }
        // A dynamic VHD whose BAT (at 1536) gives block 1 the bytes of block 0.
        let vhd = dir.file("bad.vhd")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "vpc", "-o", "subformat=dynamic", vhd, "16M"])
        try ToolRunner.check("qemu-io", ["-f", "vpc", "-c", "write -P 7 0 3M", vhd])
        let file = try PosixFile(path: vhd, mode: .readWrite)
        var entry = [UInt8](repeating: 0, count: 4)
        try entry.withUnsafeMutableBytes { try file.read(into: $0, at: 1536) }
        try entry.withUnsafeBytes { try file.write($0, at: 1540) }
        let bad = try WispBinary.run(["image", "check", vhd])
        #expect(bad.status == 2, "\(bad.stdoutText)\(bad.stderrText)")
        #expect(bad.stdoutText.contains("ERROR: the block of VHD BAT entry 0 (at offset 1536) and the block of VHD BAT entry 1 (at offset 1540) both start at offset"), "\(bad.stdoutText)")
        let json = try WispBinary.run(["image", "check", "--json", vhd])
        #expect(json.status == 2 && json.stdoutText.contains("\"format\" : \"vhd\""), "\(json.stdoutText)")
        let repair = try WispBinary.run(["image", "check", "--repair", vhd])
        #expect(repair.status == 64 && repair.stderrText.contains("--repair is supported for qcow2 images only"), "\(repair.stderrText)")
        let help = try WispBinary.run(["image", "check", "--help"])
        #expect(help.stdoutText.contains("VHDX") && help.stdoutText.contains("wisp image check disk.vhdx"), "\(help.stdoutText)")
    }
}
