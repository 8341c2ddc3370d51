import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// Corrupt and malicious VMDKs: each is refused with an error (or read within bounds),
/// never a crash, hang or unbounded allocation.
@Suite struct VmdkHostileTests {
    static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// Reads the whole image and its map; errors are fine, crashes are not.
    static func readAll(_ path: String, policy: ExternalReferencePolicy = .confinedToImageDirectory) throws {
        let device = try DiskImageFile.open(path, policy: policy)
        _ = try device.allocationMap()
        var offset: UInt64 = 0
        while offset < min(device.size, 64 << 20) {
            let n = Int(min(1 << 20, device.size - offset))
            _ = try device.read(at: offset, count: n)
            offset += UInt64(n)
        }
    }

    @Test func millionExtents() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("many.vmdk")
        var text = "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n"
        text += String(repeating: "RW 1 ZERO\n", count: 1_000_000)
        try Self.write(text, to: path)
        #expect(throws: WispError.self) { try DiskImageFile.open(path) }
        // Under the size cap but over the extent cap.
        let p2 = dir.file("many2.vmdk")
        try Self.write("# Disk DescriptorFile\n" + String(repeating: "RW 1 ZERO\n", count: 70_000), to: p2)
        #expect(throws: WispError.self) { try DiskImageFile.open(p2) }
    }

    @Test func descriptorSyntax() throws {
        let dir = try TemporaryDirectory()
        let cases = [
            "RW 99999999999999999999 ZERO",           // size overflow
            "RW 2048 FLAT noquotes.img 0",            // unquoted name
            "RW 2048 FLAT \"unterminated 0",
            "RW 2048 SESPARSE \"x\"",
            "RW -5 ZERO",
            "CID=zzzz",
            "CID=123456789abc",
            "garbage line",
            "RW 2048 FLAT \"../../etc/passwd\" 0",
            "RW 2048 FLAT \"/etc/passwd\" 0",
            "RW 2048 FLAT \"nbd:localhost:10809\" 0",
        ]
        for (i, line) in cases.enumerated() {
            let path = dir.file("d\(i).vmdk")
            try Self.write("# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\n\(line)\n", to: path)
            #expect(throws: WispError.self, "\(line)") { try Self.readAll(path) }
        }
    }

    @Test func flatExtentsRefusedFromOutside() throws {
        let dir = try TemporaryDirectory()
        let raw = dir.file("data.raw")
        try Qemu.img("create", "-f", "raw", raw, "1M")
        let path = dir.file("d.vmdk")
        try Self.write("# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n# comment\nRW 2048 FLAT \"data.raw\" 0\nRW 100 ZERO\n", to: path)
        try Self.readAll(path)
        #expect(try DiskImageFile.open(path).size == 2148 * 512)
        do {
            _ = try DiskImageFile.open(path, policy: .selfContained)
            Issue.record("a descriptor naming another file was opened under .selfContained")
        } catch let error as WispError {
            #expect(error.kind == .permissionDenied)
        }
        // An extent longer than its file.
        try Self.write("# Disk DescriptorFile\nRW 4096 FLAT \"data.raw\" 0\n", to: path)
        #expect(throws: WispError.self) { try Self.readAll(path) }
    }

    @Test func selfReferencingParent() throws {
        let dir = try TemporaryDirectory()
        let base = dir.file("self.vmdk")
        try Qemu.img("create", "-f", "vmdk", base, "1M")
        let child = dir.file("loop.vmdk")
        try Qemu.img("create", "-f", "vmdk", "-b", "self.vmdk", "-F", "vmdk", child)
        // Point the child's hint at itself: same length, so the embedded descriptor stays in place.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: child)))
        let from = Array("parentFileNameHint=\"self.vmdk\"".utf8), to = Array("parentFileNameHint=\"loop.vmdk\"".utf8)
        guard let at = (0..<(bytes.count - from.count)).first(where: { Array(bytes[$0..<($0 + from.count)]) == from }) else {
            Issue.record("no parentFileNameHint in the qemu-img snapshot"); return
        }
        bytes.replaceSubrange(at..<(at + from.count), with: to)
        try Data(bytes).write(to: URL(fileURLWithPath: child))
        do {
            _ = try DiskImageFile.open(child)
            Issue.record("a snapshot that is its own parent was opened")
        } catch let error as WispError {
            #expect(error.kind == .corrupt)
        }
    }

    /// Patches bytes of a qemu-img monolithicSparse image: GD and GT entries past the end,
    /// absurd header fields, truncation.
    @Test func corruptSparseHeaders() throws {
        let dir = try TemporaryDirectory()
        let good = dir.file("good.vmdk")
        let raw = try VmdkReadTests.source(in: dir, size: "8M")
        try Qemu.img("convert", "-f", "raw", "-O", "vmdk", raw, good)
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: good)))
        let header = try VmdkSparseHeader.parse(Array(original[0..<512]), name: "good", fileSize: UInt64(original.count))
        func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
        let gd = Int(header.gdOffset * 512)
        let firstGT = Int(original[gd]) | Int(original[gd + 1]) << 8 | Int(original[gd + 2]) << 16
        let patches: [(String, Int, [UInt8])] = [
            ("capacity absurd", 12, le64(UInt64.max / 2)),
            ("grain size zero", 20, le64(0)),
            ("grain size odd", 20, le64(3)),
            ("GTEs per GT huge", 44, le32(1 << 30)),
            ("GD past EOF", 56, le64(1 << 40)),
            ("GD at end without footer", 56, le64(UInt64.max)),
            ("descriptor huge", 36, le64(1 << 40)),
            ("GD entry past EOF", gd, le32(0x7FFF_FFFF)),
            ("GT entry past EOF", firstGT * 512, le32(0x7FFF_FFF0)),
            ("version", 4, le32(99)),
        ]
        for (label, offset, patch) in patches {
            var bytes = original
            bytes.replaceSubrange(offset..<(offset + patch.count), with: patch)
            let path = dir.file("p.vmdk")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            #expect(throws: WispError.self, "\(label)") { try Self.readAll(path) }
        }
        for length in [0, 3, 100, 511, 512, 1024, original.count / 2] {
            let path = dir.file("t.vmdk")
            try Data(original[0..<length]).write(to: URL(fileURLWithPath: path))
            // A truncated image is either refused or reads within bounds.
            _ = try? Self.readAll(path)
        }
    }

    @Test func corruptStreamOptimized() throws {
        let dir = try TemporaryDirectory()
        let raw = try VmdkReadTests.source(in: dir, size: "8M")
        let good = dir.file("s.vmdk")
        try Qemu.img("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, good)
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: good)))
        var rng = SplitMix64(seed: 42)
        // Random byte flips across the metadata and grains: never a crash.
        for _ in 0..<200 {
            var bytes = original
            for _ in 0..<8 {
                let at = Int(rng.next() % UInt64(bytes.count))
                bytes[at] = UInt8(truncatingIfNeeded: rng.next())
            }
            let path = dir.file("f.vmdk")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            _ = try? Self.readAll(path)
        }
        // Truncated through the grains (qemu-img writes the grain directory's offset in the header
        // too, so losing only the footer is harmless; it reads such a file, and so does Wisp).
        let path = dir.file("cut.vmdk")
        try Data(original[0..<(original.count / 2)]).write(to: URL(fileURLWithPath: path))
        #expect(throws: WispError.self) { try Self.readAll(path) }
    }
}
