import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// Damaged VHD, VHDX and VDI images: each seed must be refused with a `.corrupt` or
/// `.unsupported` error naming the file, never crash, hang or allocate without bound.
@Suite struct VhdHostileTests {
    static func image(_ format: String, _ options: String, in dir: TemporaryDirectory) throws -> String {
        let path = dir.file("h.\(format)")
        try Qemu.img("create", "-f", format, "-o", options, path, "16M")
        try Qemu.io(path, format: format, "write -P 0x33 0 3M")
        return path
    }

    static func patch(_ path: String, at offset: UInt64, _ bytes: [UInt8]) throws {
        let f = try PosixFile(path: path, mode: .readWrite)
        try bytes.withUnsafeBytes { try f.write($0, at: offset) }
    }

    static func expectRefused(_ path: String, format: ImageFormat, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let device = try DiskImageFile.open(path, format: format)
            _ = try device.read(at: 0, count: Int(min(device.size, 4 << 20)))
            Issue.record("\(path) was read", sourceLocation: sourceLocation)
        } catch let error as WispError {
            #expect(error.kind == .corrupt || error.kind == .unsupported, "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.contains(path), "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func vhdSeeds() throws {
        let dir = try TemporaryDirectory()
        // BAT entry beyond EOF (BAT at 1536).
        var p = try Self.image("vpc", "subformat=dynamic", in: dir)
        try Self.patch(p, at: 1536, [0x7F, 0xFF, 0xFF, 0x00])
        Self.expectRefused(p, format: .vhd)
        // Bad footer checksum, both copies.
        p = try Self.image("vpc", "subformat=dynamic", in: dir)
        let size = try FileBlockDevice(path: p).size
        try Self.patch(p, at: size - 512 + 64, [1, 2, 3, 4])
        try Self.patch(p, at: 64, [1, 2, 3, 4])
        Self.expectRefused(p, format: .vhd)
        // Absurd table entry count and block size in the dynamic header.
        p = try Self.image("vpc", "subformat=dynamic", in: dir)
        try Self.patch(p, at: 512 + 32, [0xFF, 0xFF, 0xFF, 0xFF])
        Self.expectRefused(p, format: .vhd)
        // Truncated to a few bytes.
        p = try Self.image("vpc", "subformat=dynamic", in: dir)
        _ = truncate(p, 100)
        Self.expectRefused(p, format: .vhd)
    }

    @Test func vhdxSeeds() throws {
        let dir = try TemporaryDirectory()
        // Both headers' CRCs broken.
        var p = try Self.image("vhdx", "subformat=dynamic,block_size=1M", in: dir)
        try Self.patch(p, at: (64 << 10) + 4, [9, 9, 9, 9])
        try Self.patch(p, at: (128 << 10) + 4, [9, 9, 9, 9])
        Self.expectRefused(p, format: .vhdx)
        // A log GUID in the active header (CRC fixed up): the log needs replay.
        p = try Self.image("vhdx", "subformat=dynamic,block_size=1M", in: dir)
        for at: UInt64 in [64 << 10, 128 << 10] {
            var h = try FileBlockDevice(path: p).read(at: at, count: 4096)
            for i in 48..<64 { h[i] = 0xAB }
            h.replaceSubrange(4..<8, with: [0, 0, 0, 0])
            h.putLE(UInt64(CRC32C.checksum(h)), at: 4, width: 4)
            try Self.patch(p, at: at, h)
        }
        Self.expectRefused(p, format: .vhdx)
        // Region table broken.
        p = try Self.image("vhdx", "subformat=dynamic,block_size=1M", in: dir)
        try Self.patch(p, at: (192 << 10) + 20, [0xFF])
        try Self.patch(p, at: (256 << 10) + 20, [0xFF])
        Self.expectRefused(p, format: .vhdx)
        // Truncated before the BAT.
        p = try Self.image("vhdx", "subformat=dynamic,block_size=1M", in: dir)
        _ = truncate(p, 300 << 10)
        Self.expectRefused(p, format: .vhdx)
    }

    @Test func vdiSeeds() throws {
        let dir = try TemporaryDirectory()
        // Block map entry beyond the image's blocks.
        var p = try Self.image("vdi", "static=off", in: dir)
        let mapOffset = UInt64(try FileBlockDevice(path: p).read(at: 340, count: 1)[0]) | UInt64(try FileBlockDevice(path: p).read(at: 341, count: 1)[0]) << 8
        try Self.patch(p, at: mapOffset, [0x00, 0x00, 0x00, 0x70])
        Self.expectRefused(p, format: .vdi)
        // Absurd disk size.
        p = try Self.image("vdi", "static=off", in: dir)
        try Self.patch(p, at: 368, [0, 0, 0, 0, 0, 0, 0, 0x7F])
        Self.expectRefused(p, format: .vdi)
        // A parent UUID: differencing, refused with a sentence.
        p = try Self.image("vdi", "static=off", in: dir)
        try Self.patch(p, at: 440, [1, 2, 3, 4])
        Self.expectRefused(p, format: .vdi)
        // Truncated header.
        p = try Self.image("vdi", "static=off", in: dir)
        _ = truncate(p, 200)
        Self.expectRefused(p, format: .vdi)
    }
}
