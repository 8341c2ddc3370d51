import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// qemu-img and qemu-io as fixture makers and judges.
enum Qemu {
    static func img(_ args: String...) throws { try ToolRunner.check("qemu-img", args) }
    static func imgArgs(_ args: [String]) throws -> ToolResult { try ToolRunner.check("qemu-img", args) }
    /// Runs qemu-io commands against `path` (format given explicitly so probing never guesses).
    static func io(_ path: String, format: String = "qcow2", _ commands: String...) throws {
        try io(path, format: format, commands)
    }

    static func io(_ path: String, format: String = "qcow2", _ commands: [String]) throws {
        var args = ["-f", format]
        for c in commands { args += ["-c", c] }
        args.append(path)
        let r = try ToolRunner.check("qemu-io", args)
        if r.stdoutText.contains("error") || r.stdoutText.contains("failed") {
            throw WispError(.failed, "qemu-io \(commands): \(r.stdoutText)")
        }
    }

    /// `qemu-img check` must report a clean image.
    static func check(_ path: String) throws {
        let r = try ToolRunner.run("qemu-img", ["check", path])
        guard r.status == 0 else {
            throw WispError(.failed, "qemu-img check \(path) exited \(r.status): \(r.stdoutText)\(r.stderrText)")
        }
    }

    /// `qemu-img compare` must find identical content.
    static func compare(_ a: String, _ b: String) throws {
        let r = try ToolRunner.run("qemu-img", ["compare", a, b])
        guard r.status == 0 else {
            throw WispError(.failed, "qemu-img compare \(a) \(b) exited \(r.status): \(r.stdoutText)\(r.stderrText)")
        }
    }

    /// Expands `image` with qemu-img to a raw file and checks every byte Wisp reads
    /// (through `DiskImageFile.open`) matches it; also checks the allocation map claims
    /// zeros only where the reference is zero.
    static func expectReadsIdentical(_ image: String, in dir: TemporaryDirectory, qemuFormat: String? = nil,
                                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let reference = dir.file("reference-\(UUID().uuidString).raw")
        // qemu probes a fixed VHD (footer only at the end) as raw: say the format.
        try imgArgs(["convert"] + (qemuFormat.map { ["-f", $0] } ?? []) + ["-O", "raw", image, reference])
        defer { unlink(reference) }
        let device = try DiskImageFile.open(image)
        let raw = try FileBlockDevice(path: reference)
        #expect(device.size == raw.size, sourceLocation: sourceLocation)
        var offset: UInt64 = 0
        let chunk: UInt64 = 4 << 20
        var mismatch: UInt64?
        while offset < device.size {
            let n = Int(min(chunk, device.size - offset))
            let ours = try device.read(at: offset, count: n)
            let theirs = try raw.read(at: offset, count: n)
            // memcmp: Array's == walks elements one by one, which in a debug build turns
            // reading a 3 GiB image into minutes.
            let same = ours.withUnsafeBytes { a in theirs.withUnsafeBytes { b in memcmp(a.baseAddress!, b.baseAddress!, n) == 0 } }
            if !same {
                let i = (0..<n).first { ours[$0] != theirs[$0] } ?? 0
                mismatch = offset + UInt64(i)
                break
            }
            offset += UInt64(n)
        }
        #expect(mismatch == nil, "first differing byte at \(mismatch ?? 0) in \(image)", sourceLocation: sourceLocation)
        // Extents reported as zero or hole must really read as zeros.
        for extent in try device.allocationMap() where extent.kind != .data {
            var p = extent.offset
            while p < extent.end {
                let n = Int(min(chunk, extent.end - p))
                let bytes = try raw.read(at: p, count: n)
                let zero = [UInt8](repeating: 0, count: n)
                if memcmp(bytes, zero, n) != 0 {
                    Issue.record("allocation map says \(extent.kind) at \(p) but the data is not zero", sourceLocation: sourceLocation)
                    return
                }
                p += UInt64(n)
            }
        }
    }
}
