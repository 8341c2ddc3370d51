import Foundation
import WispCore

/// Small kernel files with real headers (x86 boot protocol setup header, arm64 Image header,
/// EFI zboot wrapper): enough for every parser and layout test, and distinct per version so
/// byte-for-byte comparisons mean something.
public enum FakeKernel {
    /// An x86 bzImage: boot sector signature, "HdrS", protocol 2.15, version string,
    /// LOADED_HIGH, relocatable, XLF_KERNEL_64.
    public static func bzImage(version: String, size: Int = 16 << 10, protocolVersion: UInt16 = 0x020f) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: size)
        b[0x1f1] = 4  // setup_sects
        b.putLE16(0xAA55, at: 0x1fe)
        b.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
        b.putLE16(protocolVersion, at: 0x206)
        let versionText = Array("\(version) (wisp@test) #1 SMP".utf8)
        b.putLE16(0x400 - 0x200, at: 0x20e)
        b.replaceSubrange(0x400..<(0x400 + versionText.count), with: versionText)
        b[0x211] = 0x01  // LOADED_HIGH: bzImage
        b[0x234] = 1  // relocatable_kernel
        b.putLE16(0x0001, at: 0x236)  // XLF_KERNEL_64
        // A per-version body so two kernels never compare equal by accident.
        let marker = Array("body of \(version)".utf8)
        var at = 0x1000
        while at + marker.count < size { b.replaceSubrange(at..<(at + marker.count), with: marker); at += 997 }
        return b
    }

    /// An arm64 Image with its 64-byte header and a "Linux version" banner.
    public static func arm64Image(version: String, size: Int = 16 << 10) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: size)
        b.putLE32(0x1400_0000, at: 0)  // code0: a branch, as real Images start
        b.putLE64(0x80000, at: 8)  // text_offset
        b.putLE64(UInt64(size), at: 16)  // image_size
        b.putLE64(0xa, at: 24)  // flags: little endian, 4K pages
        b.replaceSubrange(0x38..<0x3c, with: [0x41, 0x52, 0x4d, 0x64])
        let banner = Array("Linux version \(version) (wisp@test) #1 SMP PREEMPT\n\0".utf8)
        b.replaceSubrange(0x2000..<(0x2000 + banner.count), with: banner)
        return b
    }

    /// EFI zboot: "MZ\0\0" "zimg", payload offset/size, the compression name at 0x18, and a
    /// PE signature offset, around a compressed payload.
    public static func zboot(payload compressed: [UInt8], method: String) -> [UInt8] {
        let headerSize = 0x200
        var b = [UInt8](repeating: 0, count: headerSize)
        b[0] = 0x4d; b[1] = 0x5a
        b.replaceSubrange(4..<8, with: Array("zimg".utf8))
        b.putLE32(UInt32(headerSize), at: 8)
        b.putLE32(UInt32(compressed.count), at: 12)
        let name = Array(method.utf8)
        b.replaceSubrange(0x18..<(0x18 + name.count), with: name)
        b.putLE32(0x40, at: 0x3c)
        return b + compressed
    }

    /// Runs a compressor (gzip, zstd) over `bytes`: the real tool makes the payload.
    public static func compress(_ bytes: [UInt8], with tool: String, in dir: String) throws -> [UInt8] {
        let path = dir + "/payload-\(UInt32.random(in: 0...UInt32.max))"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        _ = try ToolRunner.check(tool, ["-f", "-k", path])
        let out = path + (tool == "gzip" ? ".gz" : ".zst")
        return Array(try Data(contentsOf: URL(fileURLWithPath: out)))
    }

    /// A PE file holding UKI sections (.osrel, .cmdline, .uname, .linux, .initrd), laid out as
    /// systemd-stub's ukify does: section table after a PE32+ optional header.
    public static func uki(sections: [(String, [UInt8])], machine: UInt16 = 0x8664) -> [UInt8] {
        let peOffset = 0x80
        let optionalSize = 240
        let tableOffset = peOffset + 24 + optionalSize
        var dataOffset = (tableOffset + 40 * sections.count + 0x1ff) & ~0x1ff
        var b = [UInt8](repeating: 0, count: dataOffset)
        b[0] = 0x4d; b[1] = 0x5a
        b.putLE32(UInt32(peOffset), at: 0x3c)
        b.replaceSubrange(peOffset..<(peOffset + 4), with: [0x50, 0x45, 0, 0])
        b.putLE16(machine, at: peOffset + 4)
        b.putLE16(UInt16(sections.count), at: peOffset + 6)
        b.putLE16(UInt16(optionalSize), at: peOffset + 20)
        b.putLE16(0x20b, at: peOffset + 24)  // PE32+
        for (i, (name, data)) in sections.enumerated() {
            let at = tableOffset + 40 * i
            let n = Array(name.utf8.prefix(8))
            b.replaceSubrange(at..<(at + n.count), with: n)
            b.putLE32(UInt32(data.count), at: at + 8)  // VirtualSize: the real length
            let raw = (data.count + 0x1ff) & ~0x1ff
            b.putLE32(UInt32(raw), at: at + 16)
            b.putLE32(UInt32(dataOffset), at: at + 20)
            dataOffset += raw
        }
        for (_, data) in sections {
            b += data
            while b.count % 0x200 != 0 { b.append(0) }
        }
        return b
    }
}
