import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// Hostile qcow2 files get a clear WispError naming file, structure and offset; never a
/// crash, hang or unbounded allocation.
@Suite struct Qcow2HostileTests {
    /// A small image with plain, compressed and zero clusters (4 KiB clusters).
    static func fixture(_ dir: TemporaryDirectory, name: String = "h.qcow2", compressed: Bool = false) throws -> String {
        let image = dir.file(name)
        if compressed {
            let raw = dir.file("src-\(name).raw")
            try Qemu.img("create", "-f", "raw", raw, "1M")
            try Qemu.io(raw, format: "raw", "write -P 0x41 0 256k", "write -P 0x42 512k 8k")
            try Qemu.img("convert", "-c", "-O", "qcow2", "-o", "cluster_size=4k", raw, image)
        } else {
            try Qemu.img("create", "-f", "qcow2", "-o", "cluster_size=4k", image, "1M")
            try Qemu.io(image, "write -P 0x41 0 40k", "write -c -P 0x42 64k 4k", "write -z 128k 8k")
        }
        return image
    }

    static func patch(_ path: String, at offset: UInt64, _ bytes: [UInt8]) throws {
        let f = try FileBlockDevice(path: path, writable: true)
        try f.write(bytes, at: offset)
    }

    static func be64(_ v: UInt64) -> [UInt8] { var b = [UInt8](repeating: 0, count: 8); b.putBE64(v, at: 0); return b }
    static func be32(_ v: UInt32) -> [UInt8] { var b = [UInt8](repeating: 0, count: 4); b.putBE32(v, at: 0); return b }

    /// Opening and reading everything must throw a WispError whose message contains `words`.
    static func expectError(_ path: String, _ words: String..., sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let device = try DiskImageFile.open(path)
            _ = try device.allocationMap()
            var offset: UInt64 = 0
            while offset < device.size {
                let n = Int(min(1 << 20, device.size - offset))
                _ = try device.read(at: offset, count: n)
                offset += UInt64(n)
            }
            Issue.record("no error for \(path)", sourceLocation: sourceLocation)
        } catch let error as WispError {
            for w in words {
                #expect(error.message.contains(w), "'\(error.message)' should mention '\(w)'", sourceLocation: sourceLocation)
            }
            #expect(error.message.contains(path), sourceLocation: sourceLocation)
        } catch {
            Issue.record("not a WispError: \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func truncatedHeader() throws {
        let dir = try TemporaryDirectory()
        let image = try Self.fixture(dir)
        let bytes = try FileBlockDevice(path: image).read(at: 0, count: 50)
        let truncated = dir.file("t.qcow2")
        FileManager.default.createFile(atPath: truncated, contents: Data(bytes))
        Self.expectError(truncated, "qcow2 header", "offset 0")
    }

    @Test func tablesPastEndOfFile() throws {
        let dir = try TemporaryDirectory()
        let image = try Self.fixture(dir)
        try Self.patch(image, at: 40, Self.be64(1 << 40))
        Self.expectError(image, "L1 table", "past end of file", "offset 40")

        let rt = try Self.fixture(dir, name: "rt.qcow2")
        try Self.patch(rt, at: 48, Self.be64(1 << 30))
        Self.expectError(rt, "refcount table")
    }

    @Test func absurdSizes() throws {
        let dir = try TemporaryDirectory()
        let big = try Self.fixture(dir, name: "big.qcow2")
        try Self.patch(big, at: 24, Self.be64(1 << 63))
        Self.expectError(big, "virtual size", "offset 24")

        let l1 = try Self.fixture(dir, name: "l1.qcow2")
        try Self.patch(l1, at: 36, Self.be32(0x7FFF_FFFF))
        Self.expectError(l1, "L1 table", "absurd")

        // Virtual size grown without the L1 table to map it.
        let short = try Self.fixture(dir, name: "short.qcow2")
        try Self.patch(short, at: 24, Self.be64(1 << 40))
        Self.expectError(short, "L1 table", "needs")

        for bits: UInt32 in [8, 22, 63] {
            let cb = try Self.fixture(dir, name: "cb\(bits).qcow2")
            try Self.patch(cb, at: 20, Self.be32(bits))
            Self.expectError(cb, "cluster_bits", "offset 20")
        }
    }

    @Test func unsupportedFeaturesAreNamed() throws {
        let dir = try TemporaryDirectory()
        // The external data file bit with no data file named (QEMU would want one on its
        // command line); images that name theirs are BackingChainPolicyTests' subject.
        let external = try Self.fixture(dir, name: "ext.qcow2")
        try Self.patch(external, at: 72, Self.be64(Qcow2Header.externalDataBit))
        Self.expectError(external, "external data file")
        let unknown = try Self.fixture(dir, name: "unknown.qcow2")
        try Self.patch(unknown, at: 72, Self.be64(1 << 40))
        Self.expectError(unknown, "incompatible feature")
    }

    @Test func l2AndCompressedDescriptorsOutsideTheFile() throws {
        let dir = try TemporaryDirectory()
        let image = try Self.fixture(dir, compressed: true)
        let f = try FileBlockDevice(path: image)
        let l1Offset = try ByteReader(try f.read(at: 40, count: 8), source: image, structure: "t").u64be(0)
        let l2 = try ByteReader(try f.read(at: l1Offset, count: 8), source: image, structure: "t").u64be(0) & 0x00FF_FFFF_FFFF_FE00
        // First L2 entry: compressed, offset far past the end of the file.
        let shift: UInt64 = 62 - (12 - 8)
        try Self.patch(image, at: l2, Self.be64(1 << 62 | 3 << shift | (1 << 40)))
        Self.expectError(image, "compressed cluster", "outside the file", "offset \(l2)")

        let second = try Self.fixture(dir, name: "l2.qcow2", compressed: true)
        try Self.patch(second, at: l1Offset, Self.be64(1 << 63 | 1 << 45))
        Self.expectError(second, "L1 entry 0", "past the end of the file")
    }

    @Test func backingLoopsAndDepth() throws {
        let dir = try TemporaryDirectory()
        let a = dir.file("a.qcow2"), b = dir.file("b.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-u", "-b", "b.qcow2", "-F", "qcow2", a, "1M")
        try Qemu.img("create", "-f", "qcow2", "-u", "-b", "a.qcow2", "-F", "qcow2", b, "1M")
        Self.expectError(a, "loops")
        // A chain through a symlink is still the same file.
        let c = dir.file("c.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-u", "-b", "link.qcow2", "-F", "qcow2", c, "1M")
        try FileManager.default.createSymbolicLink(atPath: dir.file("link.qcow2"), withDestinationPath: c)
        Self.expectError(c, "loops")

        var previous = dir.file("d0.raw")
        try Qemu.img("create", "-f", "raw", previous, "1M")
        for i in 1...20 {
            let next = dir.file("d\(i).qcow2")
            try Qemu.img("create", "-f", "qcow2", "-u", "-b", (previous as NSString).lastPathComponent,
                         "-F", i == 1 ? "raw" : "qcow2", next, "1M")
            previous = next
        }
        Self.expectError(previous, "backing chain", "deep")
        Self.expectError(dir.file("missing-none.qcow2"), "no such file")
    }

    @Test func refcountTableGarbage() throws {
        let dir = try TemporaryDirectory()
        let image = try Self.fixture(dir)
        let f = try FileBlockDevice(path: image, writable: true)
        let rtOffset = try ByteReader(try f.read(at: 48, count: 8), source: image, structure: "t").u64be(0)
        try f.write([UInt8](repeating: 0xA5, count: 4096), at: rtOffset)
        // Reading does not need refcounts.
        try Qemu.expectReadsIdentical(image, in: dir)
        let report = try Qcow2Checker.check(path: image)
        #expect(!report.corruptions.isEmpty)
        let q = try Qcow2Image(path: image, writable: true)
        #expect(throws: WispError.self) { try q.write([UInt8](repeating: 1, count: 4096), at: 512 << 10) }
    }

    /// Seeded random corruption of header, L1 and L2: every outcome is data or a WispError.
    @Test func randomCorruptionNeverCrashes() throws {
        let dir = try TemporaryDirectory()
        let pristine = [try Self.fixture(dir, name: "p1.qcow2"), try Self.fixture(dir, name: "p2.qcow2", compressed: true)]
        var errors = 0, reads = 0
        for seed in 0..<400 {
            var rng = SplitMix64(seed: UInt64(seed))
            let source = pristine[seed % 2]
            var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: source)))
            // Regions: header, then the first clusters (L1, refcounts, L2 live there).
            let flips = Int.random(in: 1...8, using: &rng)
            for _ in 0..<flips {
                let region = Int.random(in: 0...2, using: &rng)
                let limit = region == 0 ? 112 : region == 1 ? min(bytes.count, 6 * 4096) : bytes.count
                let i = Int.random(in: 0..<limit, using: &rng)
                bytes[i] ^= UInt8.random(in: 1...255, using: &rng)
            }
            let path = dir.file("fuzz.qcow2")
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
            do {
                let device = try DiskImageFile.open(path)
                _ = try device.allocationMap()
                var offset: UInt64 = 0
                while offset < min(device.size, 4 << 20) {
                    let n = Int(min(256 << 10, device.size - offset))
                    _ = try device.read(at: offset, count: n)
                    offset += UInt64(n)
                }
                _ = try? Qcow2Checker.check(path: path)
                reads += 1
            } catch is WispError {
                errors += 1
            }
        }
        #expect(errors > 0 && reads > 0, "errors \(errors), clean reads \(reads)")
    }
}
