import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage


/// Everything Wisp writes must pass `qemu-img check` and `qemu-img compare`.
@Suite struct Qcow2WriteTests {
    /// Applies the same seeded random writes to `image` (through Wisp) and to `reference` (raw).
    static func randomWrites(image: any BlockDevice, reference: FileBlockDevice, seed: UInt64, count: Int,
                             maxLength: Int = 200_000) throws {
        var rng = SplitMix64(seed: seed)
        for i in 0..<count {
            let length = Int.random(in: 1...maxLength, using: &rng)
            let offset = UInt64.random(in: 0...(image.size - UInt64(length)), using: &rng)
            let byte = UInt8(truncatingIfNeeded: i &* 37 &+ 1)
            var data = [UInt8](repeating: byte, count: length)
            if i % 3 == 0 { data = data.enumerated().map { UInt8(truncatingIfNeeded: $0.offset ^ Int(byte)) } }
            if i % 7 == 0 { data = [UInt8](repeating: 0, count: length) }
            try image.write(data, at: offset)
            try reference.write(data, at: offset)
        }
        try image.flush()
    }

    @Test(arguments: [512, 4096, 65536, 2 << 20])
    func createAndWrite(clusterSize: Int) throws {
        let dir = try TemporaryDirectory()
        let image = dir.file("new.qcow2")
        let size: UInt64 = 24 << 20
        try Qcow2Image.create(path: image, virtualSize: size, clusterSize: clusterSize)
        try Qemu.check(image)
        let reference = dir.file("ref.raw")
        try Qemu.img("create", "-f", "raw", reference, "24M")
        do {
            let q = try Qcow2Image(path: image, writable: true)
            let r = try FileBlockDevice(path: reference, writable: true)
            // 512-byte clusters: 10 MiB of writes also grows the refcount table.
            try Self.randomWrites(image: q, reference: r, seed: UInt64(clusterSize), count: 60)
        }
        try Qemu.check(image)
        try Qemu.compare(image, reference)
        try Qemu.expectReadsIdentical(image, in: dir)
    }

    @Test func overlayCopyOnWriteThenQemuWrites() throws {
        let dir = try TemporaryDirectory()
        let base = dir.file("base.qcow2")
        try Qemu.img("create", "-f", "qcow2", base, "20M")
        try Qemu.io(base, "write -P 0x10 0 20M", "write -z 3M 1M")
        let cbase = dir.file("cbase.qcow2")
        try Qemu.img("convert", "-c", "-O", "qcow2", base, cbase)
        for backing in [base, cbase] {
            let overlay = dir.file("overlay.qcow2")
            unlink(overlay)
            try Qcow2Image.create(path: overlay, virtualSize: 24 << 20, backingFile: (backing as NSString).lastPathComponent,
                                  backingFormat: .qcow2)
            let reference = dir.file("ref.raw")
            unlink(reference)
            try Qemu.img("convert", "-O", "raw", backing, reference)
            try Qemu.img("resize", "-f", "raw", reference, "24M")
            do {
                let q = try Qcow2Image(path: overlay, writable: true)
                let r = try FileBlockDevice(path: reference, writable: true)
                try Self.randomWrites(image: q, reference: r, seed: 7, count: 40)
            }
            try Qemu.check(overlay)
            try Qemu.compare(overlay, reference)
            // QEMU then runs on the overlay: its writes land on top of ours.
            try Qemu.io(overlay, "write -P 0xee 100000 300000", "write -z 1M 64k")
            try Qemu.io(reference, format: "raw", "write -P 0xee 100000 300000", "write -z 1M 64k")
            try Qemu.check(overlay)
            try Qemu.compare(overlay, reference)
            // And we can write again after QEMU did.
            do {
                let q = try Qcow2Image(path: overlay, writable: true)
                let r = try FileBlockDevice(path: reference, writable: true)
                try Self.randomWrites(image: q, reference: r, seed: 8, count: 20)
            }
            try Qemu.check(overlay)
            try Qemu.compare(overlay, reference)
        }
    }

    @Test(arguments: ["compat=0.10", "extended_l2=on", "lazy_refcounts=on", "refcount_bits=1", "refcount_bits=64"])
    func writeIntoQemuImages(options: String) throws {
        let dir = try TemporaryDirectory()
        let base = dir.file("base.raw")
        try Qemu.img("create", "-f", "raw", base, "8M")
        try Qemu.io(base, format: "raw", "write -P 0x61 0 8M")
        let image = dir.file("q.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-o", options, "-b", base, "-F", "raw", image, "12M")
        try Qemu.io(image, "write -P 0x62 5000 20000", "write -z 2M 128k", "write -c -P 0x63 4M 64k")
        let reference = dir.file("ref.raw")
        try Qemu.img("convert", "-O", "raw", image, reference)
        do {
            let q = try Qcow2Image(path: image, writable: true)
            let r = try FileBlockDevice(path: reference, writable: true)
            try Self.randomWrites(image: q, reference: r, seed: 99, count: 40, maxLength: 50_000)
        }
        try Qemu.check(image)
        try Qemu.compare(image, reference)
    }

    @Test func resizeGrowsAndRelocatesL1() throws {
        let dir = try TemporaryDirectory()
        let image = dir.file("r.qcow2")
        try Qcow2Image.create(path: image, virtualSize: 1 << 20, clusterSize: 512)
        do {
            let q = try Qcow2Image(path: image, writable: true)
            try q.write([UInt8](repeating: 0x42, count: 1000), at: 1000)
        }
        // 512-byte clusters: one L1 cluster maps 2 MiB, so 64 MiB moves the L1 table.
        try DiskImageFile.resize(path: image, newSize: 64 << 20)
        try Qemu.check(image)
        #expect(try ImageInfo.read(path: image).virtualSize == 64 << 20)
        do {
            let q = try Qcow2Image(path: image, writable: true)
            try q.write([UInt8](repeating: 0x43, count: 5000), at: 60 << 20)
        }
        try Qemu.check(image)
        let reference = dir.file("ref.raw")
        try Qemu.img("create", "-f", "raw", reference, "64M")
        try Qemu.io(reference, format: "raw", "write -P 0x42 1000 1000", "write -P 0x43 62914560 5000")
        try Qemu.compare(image, reference)

        let raw = dir.file("r.raw")
        try Qemu.img("create", "-f", "raw", raw, "1M")
        try DiskImageFile.resize(path: raw, newSize: 3 << 20)
        #expect(try FileBlockDevice(path: raw).size == 3 << 20)
        #expect(throws: WispError.self) { try DiskImageFile.resize(path: raw, newSize: 1 << 20) }
    }

    @Test func createIsAtomicAndValidatesBacking() throws {
        let dir = try TemporaryDirectory()
        let overlay = dir.file("o.qcow2")
        #expect(throws: WispError.self) {
            try Qcow2Image.create(path: overlay, virtualSize: 1 << 20, backingFile: "missing.qcow2")
        }
        #expect(!FileManager.default.fileExists(atPath: overlay))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(leftovers.isEmpty)
        #expect(throws: WispError.self) { try Qcow2Image.create(path: overlay, virtualSize: 1 << 20, clusterSize: 1000) }
    }
}
