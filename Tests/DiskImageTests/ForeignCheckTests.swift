import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// `wisp image check` for VHD, VHDX, VDI and VMDK: images qemu-img and qemu-io make are
/// clean (and `qemu-img check` agrees where it checks the format: vhdx, vdi, vmdk; it has
/// no check for vpc); damaged seeds are reported as corruptions (exit status 2) with a
/// sentence naming the structure and its offset, never thrown, crashed on or hung on.
@Suite struct ForeignCheckTests {
    // MARK: - Helpers

    static func patch(_ path: String, at offset: UInt64, _ bytes: [UInt8]) throws {
        let f = try PosixFile(path: path, mode: .readWrite)
        try bytes.withUnsafeBytes { try f.write($0, at: offset) }
    }

    static func read(_ path: String, at offset: UInt64, count: Int) throws -> [UInt8] {
        try FileBlockDevice(path: path).read(at: offset, count: count)
    }

    static func le(_ value: UInt64, width: Int) -> [UInt8] { (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) } }
    static func be(_ value: UInt64, width: Int) -> [UInt8] { (0..<width).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) } }
    static func le32(_ b: [UInt8], _ at: Int = 0) -> UInt64 { (0..<4).reversed().reduce(0) { $0 << 8 | UInt64(b[at + $1]) } }
    static func le64(_ b: [UInt8], _ at: Int = 0) -> UInt64 { (0..<8).reversed().reduce(0) { $0 << 8 | UInt64(b[at + $1]) } }

    /// An image made by qemu-img with qemu-io writes.
    static func image(_ name: String, _ format: String, _ options: String, size: String = "16M",
                      writes: [String] = ["write -P 0x33 0 3M", "write -P 0x44 9M 64k"], in dir: TemporaryDirectory) throws -> String {
        let path = dir.file(name)
        try Qemu.img("create", "-q", "-f", format, "-o", options, path, size)
        if !writes.isEmpty { try Qemu.io(path, format: format, writes) }
        return path
    }

    /// qemu-img check's exit status (0 clean, 2 corrupt, 1 failed to check, ...).
    static func qemuCheck(_ path: String, format: String) throws -> Int32 {
        try ToolRunner.run("qemu-img", ["check", "-f", format, path]).status
    }

    static func expectClean(_ path: String, qemuFormat: String? = nil,
                            policy: ExternalReferencePolicy = .confinedToImageDirectory,
                            sourceLocation: SourceLocation = #_sourceLocation) throws {
        let report = try ImageChecker.check(path: path, policy: policy)
        #expect(report.isClean, "\(path): \(report.text)", sourceLocation: sourceLocation)
        #expect(report.text.contains("No errors were found"), sourceLocation: sourceLocation)
        if let qemuFormat {
            let r = try ToolRunner.run("qemu-img", ["check", "-f", qemuFormat, path])
            #expect(r.status == 0, "qemu-img check: \(r.stdoutText)\(r.stderrText)", sourceLocation: sourceLocation)
        }
    }

    /// The check reports corruption (exit status 2) and one sentence holds every fragment.
    @discardableResult
    static func expectCorrupt(_ path: String, _ fragments: [String],
                              sourceLocation: SourceLocation = #_sourceLocation) throws -> CheckReport {
        let report = try ImageChecker.check(path: path)
        #expect(!report.corruptions.isEmpty && !report.isClean, "\(path) was found clean", sourceLocation: sourceLocation)
        #expect(report.corruptions.contains { c in fragments.allSatisfy { c.contains($0) } },
                "no corruption mentions \(fragments): \(report.corruptions)", sourceLocation: sourceLocation)
        #expect(report.text.contains("ERROR: "), sourceLocation: sourceLocation)
        return report
    }

    // MARK: - Clean images

    @Test(arguments: [
        ("vpc", "subformat=dynamic"), ("vpc", "subformat=fixed"),
        ("vhdx", "subformat=dynamic"), ("vhdx", "subformat=dynamic,block_size=1M"), ("vhdx", "subformat=fixed"),
        ("vdi", "static=off"), ("vdi", "static=on"),
        ("vmdk", "subformat=monolithicSparse"), ("vmdk", "subformat=monolithicFlat"),
        ("vmdk", "subformat=twoGbMaxExtentSparse"), ("vmdk", "subformat=twoGbMaxExtentFlat"),
        ("vmdk", "subformat=streamOptimized"),
    ])
    func qemuImagesAreClean(format: String, options: String) throws {
        let dir = try TemporaryDirectory()
        // A stream takes whole grains, in order; the others also a sector at the very end.
        let writes = options.contains("stream") ? ["write -P 0x33 0 3M", "write -P 0x44 9M 64k"]
            : ["write -P 0x33 0 3M", "write -P 0x44 9M 64k", "write -P 0x55 16383k 512"]
        let path = try Self.image("c.\(format)", format, options, writes: writes, in: dir)
        // qemu-img has no check for vpc.
        try Self.expectClean(path, qemuFormat: format == "vpc" ? nil : format)
        // Untouched images too.
        let empty = try Self.image("e.\(format)", format, options, writes: [], in: dir)
        try Self.expectClean(empty)
    }

    @Test(arguments: [ImageFormat.vhd, .vhdx, .vdi, .vmdk])
    func wispWrittenImagesAreClean(format: ImageFormat) throws {
        let dir = try TemporaryDirectory()
        let raw = try VmdkReadTests.source(in: dir, size: "24M")
        var subformats: [VmdkCreateOptions.Subformat?] = [nil]
        if format == .vmdk { subformats = VmdkCreateOptions.Subformat.allCases }
        for subformat in subformats {
            let out = dir.file("w-\(subformat?.rawValue ?? "default").\(format.rawValue)")
            var options = ConvertOptions(format: format)
            if let subformat { options.vmdk = VmdkCreateOptions(subformat: subformat) }
            try ImageConverter.convert(input: try DiskImageFile.open(raw), to: out, options: options)
            try Self.expectClean(out, qemuFormat: format == .vhd ? nil : format.qemuDriverName)
        }
    }

    @Test func differencingImagesAreClean() throws {
        typealias F = DifferencingFixture
        let dir = try TemporaryDirectory()
        // VHD.
        let vhdParent = try DifferencingTests.vhdParent(dir)
        let vhdChild = dir.file("child.vhd")
        try F.vhdChild(at: vhdChild, parentFile: vhdParent, parentName: "parent.vhd",
                       locators: [("W2ru", F.utf16(".\\parent.vhd", bigEndian: false))])
        try Self.expectClean(vhdChild)
        // VHDX, with partly present blocks and a sector bitmap block.
        let vhdxParent = dir.file("parent.vhdx")
        try Qemu.img("create", "-q", "-f", "vhdx", "-o", "subformat=dynamic,block_size=1M", vhdxParent, "40M")
        try Qemu.io(vhdxParent, format: "vhdx", F.commands(F.parentWrites))
        let vhdxChild = dir.file("child.vhdx")
        try F.vhdxChild(at: vhdxChild, entries: [("parent_linkage", F.guidText(try F.vhdxDataWriteGUID(vhdxParent))),
                                                 ("relative_path", ".\\parent.vhdx")])
        try Self.expectClean(vhdxChild)
        // A VMDK snapshot.
        let base = try Self.image("base.vmdk", "vmdk", "subformat=monolithicSparse", in: dir)
        let snapshot = dir.file("snap.vmdk")
        try Qemu.img("create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", snapshot)
        try Qemu.io(snapshot, format: "vmdk", "write -P 0x66 1M 128k")
        try Self.expectClean(snapshot, qemuFormat: "vmdk")
        _ = base
        // A parent that is gone is an error, not a report.
        try FileManager.default.removeItem(atPath: vhdParent)
        let error = try #require(throws: WispError.self) { _ = try ImageChecker.check(path: vhdChild) }
        #expect(error.kind == .notFound, "\(error)")
    }

    // MARK: - VHD

    /// A dynamic VHD (2 MiB blocks) with blocks 0, 1 and 4 written; its BAT is at 1536.
    static func vhd(_ dir: TemporaryDirectory, _ name: String = "d.vhd") throws -> String {
        try image(name, "vpc", "subformat=dynamic", in: dir)
    }

    @Test func vhdTwoBatEntriesOnOneBlock() throws {
        let dir = try TemporaryDirectory()
        let p = try Self.vhd(dir)
        try Self.patch(p, at: 1540, try Self.read(p, at: 1536, count: 4))
        let report = try Self.expectCorrupt(p, ["VHD BAT entry 0 (at offset 1536)", "VHD BAT entry 1 (at offset 1540)", "both start at offset"])
        #expect(report.format == .vhd)
    }

    @Test func vhdBatEntryPastTheEnd() throws {
        let dir = try TemporaryDirectory()
        let p = try Self.vhd(dir)
        try Self.patch(p, at: 1536, [0x7F, 0xFF, 0xFF, 0x00])
        let report = try Self.expectCorrupt(p, ["VHD BAT entry 0 at offset 1536", "beyond the end of the file"])
        #expect(!report.corruptions[0].hasPrefix(p), "the report names the file once: \(report.corruptions)")
        // A block that starts inside the file but runs into the footer.
        let q = try Self.vhd(dir, "e.vhd")
        let size = try FileBlockDevice(path: q).size
        try Self.patch(q, at: 1536, Self.be((size - 1024) / 512, width: 4))
        try Self.expectCorrupt(q, ["VHD BAT entry 0 (at offset 1536)", "reaches past the end of the file"])
        let r = try Self.vhd(dir, "f.vhd")
        try Self.patch(r, at: 1536, Self.be((size - 512 - (2 << 20) - 512) / 512 + 1, width: 4))
        try Self.expectCorrupt(r, ["VHD BAT entry 0 (at offset 1536)", "the VHD footer (512 bytes) at offset \(size - 512) overlaps"])
    }

    @Test func vhdBlockOverTheBat() throws {
        let dir = try TemporaryDirectory()
        let p = try Self.vhd(dir)
        try Self.patch(p, at: 1536, Self.be(3, width: 4))  // sector 3: the BAT itself
        try Self.expectCorrupt(p, ["VHD BAT entry 0 (at offset 1536)", "the VHD BAT", "at offset 1536"])
    }

    @Test func vhdFooterChecksum() throws {
        let dir = try TemporaryDirectory()
        // Dynamic: the reader falls back to the copy at 0, the check reports the footer.
        let p = try Self.vhd(dir)
        let size = try FileBlockDevice(path: p).size
        try Self.patch(p, at: size - 512 + 64, [1, 2, 3, 4])
        try Self.expectCorrupt(p, ["VHD footer at offset \(size - 512)", "checksum"])
        // Fixed: the footer is all there is.
        let q = try Self.image("f.vhd", "vpc", "subformat=fixed", in: dir)
        let fixedSize = try FileBlockDevice(path: q).size
        try Self.patch(q, at: fixedSize - 512 + 64, [1, 2, 3, 4])
        try Self.expectCorrupt(q, ["VHD footer at offset \(fixedSize - 512)", "checksum"])
        // The copy at 0 with a valid checksum but another timestamp: the two disagree.
        let r = try Self.vhd(dir, "r.vhd")
        var copy = try Self.read(r, at: 0, count: 512)
        copy[27] ^= 0xFF
        copy.replaceSubrange(64..<68, with: [0, 0, 0, 0])
        copy.replaceSubrange(64..<68, with: Self.be(UInt64(VhdFooter.checksum(copy)), width: 4))
        try Self.patch(r, at: 0, copy)
        try Self.expectCorrupt(r, ["VHD footer copy at offset 0 differs from the footer at offset"])
        // The dynamic header's checksum.
        let s = try Self.vhd(dir, "s.vhd")
        try Self.patch(s, at: 512 + 36, [9, 9, 9, 9])
        try Self.expectCorrupt(s, ["VHD dynamic header at offset 512", "checksum"])
    }

    // MARK: - VHDX

    /// A dynamic VHDX with 1 MiB blocks, blocks 0-2 and 9 written.
    static func vhdx(_ dir: TemporaryDirectory, _ name: String = "d.vhdx") throws -> (path: String, bat: UInt64) {
        let p = try image(name, "vhdx", "subformat=dynamic,block_size=1M", in: dir)
        return (p, try VhdxImage.parse(FileBlockDevice(path: p)).bat.offset)
    }

    @Test func vhdxHeaderCRC() throws {
        let dir = try TemporaryDirectory()
        let (p, _) = try Self.vhdx(dir)
        try Self.patch(p, at: (64 << 10) + 4, [9, 9, 9, 9])
        // qemu opens such an image through the other header; Wisp reports the broken one.
        try Self.expectCorrupt(p, ["VHDX header 1 at offset 65536", "CRC-32C"])
        // Both broken: nothing else can be read.
        try Self.patch(p, at: (128 << 10) + 4, [9, 9, 9, 9])
        try Self.expectCorrupt(p, ["VHDX header 2 at offset 131072", "CRC-32C"])
        #expect(try Self.qemuCheck(p, format: "vhdx") != 0)
        // A region table copy.
        let (q, _) = try Self.vhdx(dir, "q.vhdx")
        try Self.patch(q, at: (256 << 10) + 40, [0xFF])
        try Self.expectCorrupt(q, ["VHDX region table 2 at offset 262144", "CRC-32C"])
    }

    @Test func vhdxTwoBatEntriesOnOneBlock() throws {
        let dir = try TemporaryDirectory()
        let (p, bat) = try Self.vhdx(dir)
        try Self.patch(p, at: bat + 8, try Self.read(p, at: bat, count: 8))
        try Self.expectCorrupt(p, ["the payload block of VHDX BAT entry 0 (at offset \(bat))",
                                   "the payload block of VHDX BAT entry 1 (at offset \(bat + 8))", "both start at offset"])
    }

    @Test func vhdxBatEntryPastTheEnd() throws {
        let dir = try TemporaryDirectory()
        let (p, bat) = try Self.vhdx(dir)
        try Self.patch(p, at: bat, Self.le((1 << 40) | 6, width: 8))
        try Self.expectCorrupt(p, ["VHDX BAT entry 0 at offset \(bat)", "outside the file"])
        #expect(try Self.qemuCheck(p, format: "vhdx") != 0)
        // A payload block on the BAT region itself.
        let (q, qbat) = try Self.vhdx(dir, "q.vhdx")
        try Self.patch(q, at: qbat + 16, Self.le(qbat | 6, width: 8))
        try Self.expectCorrupt(q, ["VHDX BAT entry 2 (at offset \(qbat + 16))", "the VHDX BAT region"])
        // A sector bitmap entry in a state no sector bitmap entry has.
        let (r, rbat) = try Self.vhdx(dir, "r.vhdx")
        try Self.patch(r, at: rbat + 4096 * 8, Self.le(3, width: 8))
        try Self.expectCorrupt(r, ["VHDX BAT entry 4096 (at offset \(rbat + 4096 * 8))", "state 3"])
    }

    @Test func vhdxLogNeedsReplay() throws {
        let dir = try TemporaryDirectory()
        let (p, _) = try Self.vhdx(dir)
        for at: UInt64 in [64 << 10, 128 << 10] {
            var h = try Self.read(p, at: at, count: 4096)
            for i in 48..<64 { h[i] = 0xAB }
            h.replaceSubrange(4..<8, with: [0, 0, 0, 0])
            h.putLE(UInt64(CRC32C.checksum(h)), at: 4, width: 4)
            try Self.patch(p, at: at, h)
        }
        try Self.expectCorrupt(p, ["VHDX log at offset", "never applied"])
    }

    // MARK: - VDI

    /// A dynamic VDI (1 MiB blocks) with blocks 0-2 and 9 written.
    static func vdi(_ dir: TemporaryDirectory, _ name: String = "d.vdi") throws -> (path: String, map: UInt64) {
        let p = try image(name, "vdi", "static=off", in: dir)
        return (p, try VdiImage.parse(FileBlockDevice(path: p)).mapOffset)
    }

    @Test func vdiTwoMapEntriesOnOneBlock() throws {
        let dir = try TemporaryDirectory()
        let (p, map) = try Self.vdi(dir)
        try Self.patch(p, at: map + 4, try Self.read(p, at: map, count: 4))
        try Self.expectCorrupt(p, ["VDI block map entry 0 (at offset \(map), block 0)", "VDI block map entry 1 (at offset \(map + 4), block 0)",
                                   "both start at offset"])
        #expect(try Self.qemuCheck(p, format: "vdi") == 2)
    }

    @Test func vdiMapEntryPastTheEnd() throws {
        let dir = try TemporaryDirectory()
        let (p, map) = try Self.vdi(dir)
        // Block 12 of 16 is inside the image, but the file holds only five blocks.
        try Self.patch(p, at: map + 5 * 4, Self.le(12, width: 4))
        try Self.expectCorrupt(p, ["VDI block map entry 5 at offset \(map + 20)", "beyond the end of the file"])
        #expect(try Self.qemuCheck(p, format: "vdi") == 2)  // qemu: the allocated count is off
        // Beyond the image's blocks.
        let (q, qmap) = try Self.vdi(dir, "q.vdi")
        try Self.patch(q, at: qmap, Self.le(0x7000_0000, width: 4))
        try Self.expectCorrupt(q, ["VDI block map entry 0 at offset \(qmap)", "beyond the 16 blocks"])
        #expect(try Self.qemuCheck(q, format: "vdi") == 2)
    }

    // MARK: - VMDK

    /// A monolithicSparse VMDK (64 KiB grains) with grains 0-3 written; where its grain
    /// directory and first grain table are.
    static func vmdk(_ dir: TemporaryDirectory, _ name: String = "d.vmdk") throws -> (path: String, gd: UInt64, gt: UInt64) {
        let p = try image(name, "vmdk", "subformat=monolithicSparse", writes: ["write -P 0x33 0 256k", "write -P 0x44 9M 64k"], in: dir)
        let header = try VmdkSparseHeader.parse(try Self.read(p, at: 0, count: 512), name: p, fileSize: try FileBlockDevice(path: p).size)
        let gt = Self.le32(try Self.read(p, at: header.gdOffset * 512, count: 4)) * 512
        return (p, header.gdOffset * 512, gt)
    }

    @Test func vmdkGrainTableEntryIntoTheGrainDirectory() throws {
        let dir = try TemporaryDirectory()
        let (p, gd, gt) = try Self.vmdk(dir)
        try Self.patch(p, at: gt + 4, Self.le(gd / 512, width: 4))
        // (qemu-img check only asks that a grain start inside the file: it finds nothing here.)
        try Self.expectCorrupt(p, ["the grain of VMDK grain table 0 entry 1 (at offset \(gt + 4))", "the VMDK grain directory (",
                                   "at offset \(gd)"])
    }

    @Test func vmdkGrainPastTheEnd() throws {
        let dir = try TemporaryDirectory()
        let (p, _, gt) = try Self.vmdk(dir)
        try Self.patch(p, at: gt + 8, Self.le(0x7FFF_FFFF, width: 4))
        try Self.expectCorrupt(p, ["VMDK grain table 0 entry 2 (at offset \(gt + 8))", "past the end of the file"])
        // qemu-img check prints "points after EOF" and gives up (status 1).
        #expect(try Self.qemuCheck(p, format: "vmdk") != 0)
    }

    @Test func vmdkTwoGrainTableEntriesOnOneGrain() throws {
        let dir = try TemporaryDirectory()
        let (p, _, gt) = try Self.vmdk(dir)
        try Self.patch(p, at: gt + 12, try Self.read(p, at: gt, count: 4))
        try Self.expectCorrupt(p, ["VMDK grain table 0 entry 0 (at offset \(gt))", "VMDK grain table 0 entry 3 (at offset \(gt + 12))",
                                   "both start at offset"])
    }

    @Test func vmdkGrainDirectoryEntryPastTheEnd() throws {
        let dir = try TemporaryDirectory()
        let (p, gd, _) = try Self.vmdk(dir)
        try Self.patch(p, at: gd, Self.le(0x7FFF_FFFF, width: 4))
        try Self.expectCorrupt(p, ["VMDK grain directory entry 0 (at offset \(gd))", "past the end of the file"])
        // The redundant directory, checked the same way.
        let (q, _, _) = try Self.vmdk(dir, "q.vmdk")
        let header = try VmdkSparseHeader.parse(try Self.read(q, at: 0, count: 512), name: q, fileSize: try FileBlockDevice(path: q).size)
        try Self.patch(q, at: header.rgdOffset * 512, Self.le(0x7FFF_FFFF, width: 4))
        try Self.expectCorrupt(q, ["VMDK redundant grain directory entry 0 (at offset \(header.rgdOffset * 512))", "past the end of the file"])
    }

    @Test func vmdkFlatExtentShorterThanItsDescriptor() throws {
        let dir = try TemporaryDirectory()
        let p = try Self.image("flat.vmdk", "vmdk", "subformat=monolithicFlat", writes: [], in: dir)
        #expect(truncate(dir.file("flat-flat.vmdk"), 4 << 20) == 0)
        // (qemu-img check does not look at flat extents' sizes: it finds nothing here.)
        try Self.expectCorrupt(p, ["VMDK extent 1", "reach past the end of", "flat-flat.vmdk"])
    }

    /// A directory whose every entry names the same grain table: reported, and the table is
    /// not read once per entry.
    @Test func vmdkDirectoryPointingAtOneTable() throws {
        let dir = try TemporaryDirectory()
        let p = try Self.image("big.vmdk", "vmdk", "subformat=monolithicSparse", size: "200G", writes: [], in: dir)
        let header = try VmdkSparseHeader.parse(try Self.read(p, at: 0, count: 512), name: p, fileSize: try FileBlockDevice(path: p).size)
        let entries = Int(header.gdEntries)
        let first = try Self.read(p, at: header.gdOffset * 512, count: 4)
        try Self.patch(p, at: header.gdOffset * 512, [UInt8]((0..<entries).flatMap { _ in first }))
        let clock = ContinuousClock()
        let start = clock.now
        let report = try Self.expectCorrupt(p, ["VMDK grain table 1", "VMDK grain table 0", "both start at offset"])
        #expect(report.corruptions.count >= entries - 1)
        #expect(clock.now - start < .seconds(30))
    }

    // MARK: - Repair

    @Test func repairIsRefusedForOtherFormats() throws {
        let dir = try TemporaryDirectory()
        for (format, options) in [("vpc", "subformat=dynamic"), ("vhdx", "subformat=dynamic"), ("vdi", "static=off"), ("vmdk", "subformat=monolithicSparse")] {
            let p = try Self.image("r.\(format)", format, options, writes: [], in: dir)
            let error = try #require(throws: WispError.self) { _ = try ImageChecker.check(path: p, repair: true) }
            #expect(error.kind == .usage && error.message.contains("qcow2 images only"), "\(error)")
            // Through the old entry point too.
            #expect(throws: WispError.self) { _ = try Qcow2Checker.check(path: p, repair: true) }
        }
    }
}
