import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// Converted images must pass `qemu-img check` and `qemu-img compare` against their source.
@Suite struct ImageConverterTests {
    /// A raw image with real file bytes, zeros, noise and holes.
    static func mixedRaw(_ dir: TemporaryDirectory, size: String = "40M") throws -> String {
        let raw = dir.file("mixed.raw")
        try Qemu.img("create", "-f", "raw", raw, size)
        let f = try FileBlockDevice(path: raw, writable: true)
        let text = Array(try String(contentsOfFile: #filePath, encoding: .utf8).utf8)
        var offset: UInt64 = 4096 + 123
        while offset + UInt64(text.count) < min(f.size, 2 << 20) {  // source text, unaligned
            try f.write(text, at: offset)
            offset += UInt64(text.count)
        }
        if f.size >= 32 << 20 {
            var rng = SplitMix64(seed: 42)
            let noise = (0..<(3 << 20)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            try f.write(noise, at: 20 << 20)
            try f.write([UInt8](repeating: 0, count: 1 << 20), at: 30 << 20)  // allocated zeros
        }
        try f.write([UInt8](repeating: 0x7F, count: 5000), at: f.size - 5000)
        return raw
    }

    @Test(arguments: [nil, Qcow2CompressionType.deflate, .zstd], [512, 65536, 2 << 20])
    func rawToQcow2(compression: Qcow2CompressionType?, clusterSize: Int) throws {
        let dir = try TemporaryDirectory()
        let raw = try Self.mixedRaw(dir)
        let out = dir.file("out.qcow2")
        var options = ConvertOptions(format: .qcow2, compression: compression, clusterSize: clusterSize)
        options.workers = 3
        try ImageConverter.convert(input: try DiskImageFile.open(raw), to: out, options: options)
        try Qemu.check(out)
        try Qemu.compare(raw, out)
        try Qemu.expectReadsIdentical(out, in: dir)
        let info = try ImageInfo.read(path: out)
        #expect(info.clusterSize == clusterSize)
        #expect(info.compressionType == compression ?? .deflate)
        // No larger than what qemu-img makes from the same input (metadata reserved for
        // 512-byte clusters may cost up to 1%).
        let reference = dir.file("qemu.qcow2")
        var args = ["convert", "-O", "qcow2", "-o", "cluster_size=\(clusterSize)"]
        if let compression { args += ["-c", "-o", "compression_type=\(compression == .zstd ? "zstd" : "zlib")"] }
        _ = try Qemu.imgArgs(args + [raw, reference])
        let ours = try FileBlockDevice(path: out).size
        let theirs = try FileBlockDevice(path: reference).size
        #expect(ours <= theirs + theirs / 100 + UInt64(clusterSize) * 2, "wisp \(ours) bytes, qemu-img \(theirs) bytes")
    }

    @Test func qcow2ChainToSparseRaw() throws {
        let dir = try TemporaryDirectory()
        let raw = try Self.mixedRaw(dir)
        let base = dir.file("base.qcow2")
        try Qemu.img("convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", raw, base)
        let overlay = dir.file("overlay.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", overlay)
        try Qemu.io(overlay, "write -P 0x21 1M 3M", "write -z 20M 1M")
        let out = dir.file("flat.raw")
        try ImageConverter.convert(input: try DiskImageFile.open(overlay), to: out, options: ConvertOptions(format: .raw))
        try Qemu.compare(overlay, out)
        var st = stat()
        stat(out, &st)
        #expect(UInt64(st.st_blocks) * 512 < UInt64(st.st_size) / 2, "raw output must be sparse")
        // And back to qcow2, flattened.
        let q = dir.file("flat.qcow2")
        try ImageConverter.convert(input: try DiskImageFile.open(overlay), to: q, options: ConvertOptions(format: .qcow2, compression: .deflate))
        try Qemu.check(q)
        try Qemu.compare(overlay, q)
        #expect(try ImageInfo.read(path: q).backingFile == nil)
    }

    @Test func failedConvertLeavesNothing() throws {
        let dir = try TemporaryDirectory()
        let raw = try Self.mixedRaw(dir, size: "4M")
        let image = dir.file("c.qcow2")
        try Qemu.img("convert", "-c", "-O", "qcow2", raw, image)
        // Garble every compressed cluster's bytes (after the metadata) so inflating fails.
        let f = try FileBlockDevice(path: image, writable: true)
        let garbage = [UInt8](repeating: 0xFF, count: Int(f.size) - 5 * 65536)
        try f.write(garbage, at: 5 * 65536)
        let outDir = try TemporaryDirectory()
        #expect(throws: WispError.self) {
            try ImageConverter.convert(input: try DiskImageFile.open(image), to: outDir.file("out.raw"),
                                       options: ConvertOptions(format: .raw))
        }
        #expect(throws: WispError.self) {
            try ImageConverter.convert(input: try DiskImageFile.open(image), to: outDir.file("out.qcow2"),
                                       options: ConvertOptions(format: .qcow2, compression: .zstd))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outDir.path).isEmpty)
    }
}
