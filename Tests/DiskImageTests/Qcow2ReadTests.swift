import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// Every qcow2 variant qemu-img writes must read byte-identical to `qemu-img convert -O raw`.
@Suite struct Qcow2ReadTests {
    /// Writes a mix of aligned, unaligned, zeroed and discarded ranges with qemu-io.
    static func fill(_ path: String, format: String = "qcow2") throws {
        try Qemu.io(path, format: format,
                    "write -P 0xab 0 1M",
                    "write -P 0xcd 1536 3000",
                    "write -P 0x11 5M 300k",
                    "write -z 5M 64k",
                    "write -P 0x5a 9437000 70000",
                    "write -P 0x77 30M 4k",
                    "discard 5373952 65536")
    }

    @Test(arguments: ["512", "4k", "64k", "2M"])
    func clusterSizes(clusterSize: String) throws {
        let dir = try TemporaryDirectory()
        let image = dir.file("c.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-o", "cluster_size=\(clusterSize)", image, "32M")
        try Self.fill(image)
        try Qemu.expectReadsIdentical(image, in: dir)
    }

    @Test(arguments: ["compat=0.10", "compat=1.1,lazy_refcounts=on", "extended_l2=on,cluster_size=64k",
                      "extended_l2=on,cluster_size=2M", "refcount_bits=1", "refcount_bits=64",
                      "preallocation=metadata", "preallocation=full"])
    func variants(options: String) throws {
        let dir = try TemporaryDirectory()
        let image = dir.file("v.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-o", options, image, "32M")
        try Self.fill(image)
        try Qemu.expectReadsIdentical(image, in: dir)
        let header = try Qcow2Image(path: image).headerSnapshot
        if options.contains("extended_l2") { #expect(header.hasExtendedL2) }
        if options.contains("compat=0.10") { #expect(header.version == 2) }
    }

    @Test(arguments: ["zlib", "zstd"], ["512", "64k", "2M"])
    func compressed(type: String, clusterSize: String) throws {
        let dir = try TemporaryDirectory()
        let raw = dir.file("src.raw")
        try Qemu.img("create", "-f", "raw", raw, "24M")
        // Text-like compressible data and random-ish incompressible data.
        try Qemu.io(raw, format: "raw", "write -P 0x41 0 3M", "write -P 0x00 3M 1M", "write -P 0x7e 10M 2M")
        let random = (0..<(1 << 20)).map { i in UInt8(truncatingIfNeeded: (i &* 2654435761) >> 13) }
        let f = try FileBlockDevice(path: raw, writable: true)
        try f.write(random, at: 16 << 20)
        let image = dir.file("c.qcow2")
        try Qemu.img("convert", "-c", "-O", "qcow2", "-o", "compression_type=\(type),cluster_size=\(clusterSize)", raw, image)
        try Qemu.expectReadsIdentical(image, in: dir)
        #expect(try Qcow2Image(path: image).headerSnapshot.compressionType == (type == "zstd" ? .zstd : .deflate))
        // qemu-io can also write single compressed clusters into an image with data.
        try Qemu.io(image, "write -c -P 0x33 20M \(clusterSize)")
        try Qemu.expectReadsIdentical(image, in: dir)
    }

    @Test func backingChains() throws {
        let dir = try TemporaryDirectory()
        let base = dir.file("base.qcow2")
        try Qemu.img("create", "-f", "qcow2", base, "16M")
        try Qemu.io(base, "write -P 0x10 0 16M")
        let mid = dir.file("mid.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", mid)
        try Qemu.io(mid, "write -P 0x20 1M 100k", "write -z 4M 64k", "write -P 0x21 6M 512")
        let top = dir.file("top.qcow2")
        // Relative name resolved against the overlay's directory; larger than its backing.
        try Qemu.img("create", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", top, "40M")
        try Qemu.io(top, "write -P 0x30 1050000 5000", "write -z 8M 1M", "write -P 0x31 30M 64k")
        try Qemu.expectReadsIdentical(top, in: dir)
        // The overlay's map merges the backing's: the base's data shows through.
        let map = try DiskImageFile.open(top).allocationMap()
        #expect(map.first?.kind == .data)
        #expect(map.contains { $0.kind == .zero })

        // v2 overlay on a raw backing (v2 has no zero flag: write -z allocates zeros).
        let rawBase = dir.file("base.raw")
        try Qemu.img("create", "-f", "raw", rawBase, "8M")
        try Qemu.io(rawBase, format: "raw", "write -P 0x44 0 8M")
        let v2 = dir.file("v2.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-o", "compat=0.10", "-b", rawBase, "-F", "raw", v2)
        try Qemu.io(v2, "write -P 0x55 100k 10k", "write -z 2M 1M")
        try Qemu.expectReadsIdentical(v2, in: dir)

        // Extended L2 overlay: subclusters fall through to the backing file.
        let ext = dir.file("ext.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-o", "extended_l2=on", "-b", "base.qcow2", "-F", "qcow2", ext)
        try Qemu.io(ext, "write -P 0x66 4096 4096", "write -z 65536 2048", "write -P 0x67 200000 1000")
        try Qemu.expectReadsIdentical(ext, in: dir)

        // A compressed base under an overlay.
        let cbase = dir.file("cbase.qcow2")
        try Qemu.img("convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", base, cbase)
        let over = dir.file("over.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-b", cbase, "-F", "qcow2", over)
        try Qemu.io(over, "write -P 0x99 3000 70000")
        try Qemu.expectReadsIdentical(over, in: dir)
    }

    @Test func dirtyImagesReadAndReportIt() throws {
        let dir = try TemporaryDirectory()
        let image = dir.file("d.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-o", "lazy_refcounts=on", image, "8M")
        try Qemu.io(image, "write -P 0x12 0 1M")
        // Set the dirty bit by hand, as a crash with lazy refcounts would leave it.
        let f = try FileBlockDevice(path: image, writable: true)
        var incompatible = try f.read(at: 72, count: 8)
        incompatible[7] |= 1
        try f.write(incompatible, at: 72)
        try Qemu.expectReadsIdentical(image, in: dir)
        let info = try ImageInfo.read(path: image)
        #expect(info.dirty == true)
        #expect(info.lazyRefcounts == true)
        #expect(throws: WispError.self) { _ = try Qcow2Image(path: image, writable: true) }
    }
}
