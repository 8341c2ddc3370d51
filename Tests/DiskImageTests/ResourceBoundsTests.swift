import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// Issue 16, part 4: a tiny image made by qemu-img, then changed to claim a huge table
/// (L1, refcount table, BAT, block map, grain directory), is refused with the bound named,
/// before anything of the claimed size is allocated.
@Suite struct DiskImageResourceBoundsTests {
    /// Growth of the resident-set high-water mark allowed while refusing a hostile image:
    /// loose because suites run in parallel in one process; the claims are gigabytes.
    static let memoryAllowanceKiB = 256 << 10

    static func create(_ dir: TemporaryDirectory, _ format: String, options: [String] = []) throws -> String {
        let path = dir.file("tiny.\(format)")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", format] + options + [path, "64M"])
        return path
    }

    static func patch(_ path: String, at offset: UInt64, _ bytes: [UInt8]) throws {
        try FileBlockDevice(path: path, writable: true).write(bytes, at: offset)
    }

    static func field(_ value: UInt64, width: Int, bigEndian: Bool) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: width)
        bytes.putBE(value, at: 0, width: width)
        return bigEndian ? bytes : bytes.reversed()
    }

    /// Opening and reading the first MiB must fail with `.corrupt`, naming every phrase, and
    /// stay small.
    static func expectRefused(_ path: String, _ phrases: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let before = ResourceUsage.maxResidentKiB()
        do {
            let device = try DiskImageFile.open(path)
            _ = try device.read(at: 0, count: Int(min(device.size, 1 << 20)))
            Issue.record("\(path) opened and read", sourceLocation: sourceLocation)
        } catch let error as WispError {
            #expect(error.kind == .corrupt, "\(error)", sourceLocation: sourceLocation)
            for phrase in phrases {
                #expect(error.message.contains(phrase), "\(error.message) lacks \(phrase)", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("not a WispError: \(error)", sourceLocation: sourceLocation)
        }
        #expect(ResourceUsage.maxResidentKiB() - before < memoryAllowanceKiB, sourceLocation: sourceLocation)
    }

    @Test func qcow2TablesClaimingGigabytes() throws {
        let dir = try TemporaryDirectory("bounds-qcow2")
        let l1 = try Self.create(dir, "qcow2")
        try Self.patch(l1, at: 36, Self.field(0x7FFF_FFFF, width: 4, bigEndian: true))
        Self.expectRefused(l1, ["L1 table of 2147483647 entries is absurd (more than 32 MiB)"])
        let refcounts = dir.file("rt.qcow2")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", refcounts, "64M"])
        try Self.patch(refcounts, at: 56, Self.field(0xFFFF_FFFF, width: 4, bigEndian: true))
        Self.expectRefused(refcounts, ["refcount table of 4294967295 clusters is absurd"])
    }

    /// A dynamic VHD claiming its largest size in 512-byte blocks: a BAT of a gigabyte or
    /// more in a 2.5 KiB file.
    @Test func vhdBATClaimingAGibibyteOrMore() throws {
        let dir = try TemporaryDirectory("bounds-vhd")
        let path = try Self.create(dir, "vpc", options: ["-o", "subformat=dynamic"])
        let file = try FileBlockDevice(path: path, writable: true)
        let size: UInt64 = 0xFF00_0000 * 512
        let tail = file.size - 512
        var footer = try file.read(at: tail, count: 512)
        footer.putBE64(size, at: 40)
        footer.putBE64(size, at: 48)
        footer.putBE32(0, at: 64)
        footer.putBE32(VhdFooter.checksum(footer), at: 64)
        // Disks qemu-img made take their size from the CHS geometry, as qemu reads them:
        // the largest geometry, 65535 x 16 x 255 sectors, claims it too.
        footer.replaceSubrange(56..<60, with: [0xFF, 0xFF, 16, 255])
        footer.putBE32(0, at: 64)
        footer.putBE32(VhdFooter.checksum(footer), at: 64)
        try file.write(footer, at: tail)
        try file.write(footer, at: 0)
        let headerOffset = ByteReaderFields.be64(footer, 16)
        var header = try file.read(at: headerOffset, count: 1024)
        header.putBE32(0xFFFF_FFFF, at: 28)
        header.putBE32(512, at: 32)
        header.putBE32(0, at: 36)
        header.putBE32(VhdFooter.checksum(header, skipping: 36), at: 36)
        try file.write(header, at: headerOffset)
        Self.expectRefused(path, ["VHD BAT", "bytes reach past the end of the file (2560 bytes)"])
    }

    /// A VDI claiming 2^50 bytes in 2^30 blocks: a 4 GiB block map in a tiny file.
    @Test func vdiBlockMapClaimingFourGibibytes() throws {
        let dir = try TemporaryDirectory("bounds-vdi")
        let path = try Self.create(dir, "vdi")
        try Self.patch(path, at: 368, Self.field(1 << 50, width: 8, bigEndian: false))
        try Self.patch(path, at: 384, Self.field(1 << 30, width: 4, bigEndian: false))
        Self.expectRefused(path, ["VDI block map", "4294967296 bytes reach past the end of the file"])
        // One byte more than the format's bound is refused by the bound's name.
        try Self.patch(path, at: 368, Self.field((1 << 50) + 1, width: 8, bigEndian: false))
        Self.expectRefused(path, ["disk size 1125899906842625 is absurd"])
    }

    /// A sparse VMDK whose capacity claims 2^40 sectors: a 64 MiB grain directory.
    @Test func vmdkGrainDirectoryClaimingSixtyFourMebibytes() throws {
        let dir = try TemporaryDirectory("bounds-vmdk")
        let path = try Self.create(dir, "vmdk")
        try Self.patch(path, at: 12, Self.field(1 << 40, width: 8, bigEndian: false))
        Self.expectRefused(path, ["VMDK"])
    }
}

enum ByteReaderFields {
    static func be64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 << 8 | UInt64(bytes[at + $1]) }
    }
}
