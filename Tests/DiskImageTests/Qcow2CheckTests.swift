import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// `Qcow2Checker` agrees with `qemu-img check` on clean, leaking and broken images.
@Suite struct Qcow2CheckTests {
    @Test(arguments: ["cluster_size=512", "compat=0.10", "extended_l2=on", "refcount_bits=1", "refcount_bits=64"])
    func cleanImagesAreClean(options: String) throws {
        let dir = try TemporaryDirectory()
        let image = dir.file("c.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-o", options, image, "8M")
        try Qemu.io(image, "write -P 1 0 1M", "write -c -P 2 2M 64k", "write -z 3M 64k", "write -P 3 5000 300")
        let report = try Qcow2Checker.check(path: image)
        #expect(report.isClean, "\(report.text)")
        #expect(report.allocatedClusters > 0)
    }

    @Test func findsAndRepairsLeaks() throws {
        let dir = try TemporaryDirectory()
        let image = dir.file("leak.qcow2")
        try Qcow2Image.create(path: image, virtualSize: 8 << 20)
        do {
            let q = try Qcow2Image(path: image, writable: true)
            try q.write([UInt8](repeating: 9, count: 100_000), at: 0)
            // Allocate clusters nothing points at: leaks.
            _ = try q.lock.withLock { try q.allocateClusters(3) }
            try q.file.truncate(to: q.fileEnd)
        }
        let qemu = try ToolRunner.run("qemu-img", ["check", image])
        #expect(qemu.status == 3, "qemu-img check should report leaks: \(qemu.stdoutText)")
        let report = try Qcow2Checker.check(path: image)
        #expect(report.leakedClusters == 3)
        #expect(report.refcountErrors == 0)
        #expect(report.corruptions.isEmpty)
        let repaired = try Qcow2Checker.check(path: image, repair: true)
        #expect(repaired.repairedClusters == 3)
        try Qemu.check(image)
        #expect(try Qcow2Checker.check(path: image).isClean)
    }

    @Test func findsRefcountErrorsAndOverlaps() throws {
        let dir = try TemporaryDirectory()
        let image = dir.file("bad.qcow2")
        try Qcow2Image.create(path: image, virtualSize: 8 << 20)
        do {
            let q = try Qcow2Image(path: image, writable: true)
            try q.write([UInt8](repeating: 9, count: 200_000), at: 0)
            // Drop the refcount of a referenced data cluster.
            try q.lock.withLock { try q.changeRefcount(ofCluster: q.fileEnd / 65536 - 1, by: -1) }
        }
        let qemu = try ToolRunner.run("qemu-img", ["check", image])
        #expect(qemu.status == 2)
        let report = try Qcow2Checker.check(path: image)
        #expect(report.refcountErrors == 1)

        // Point the L1 table at the refcount table: overlapping metadata.
        let overlap = dir.file("overlap.qcow2")
        try Qemu.img("create", "-f", "qcow2", overlap, "8M")
        try Qemu.io(overlap, "write -P 1 0 64k")
        let f = try FileBlockDevice(path: overlap, writable: true)
        let refcountTable = try f.read(at: 48, count: 8)
        try f.write(refcountTable, at: 40)
        let broken = try Qcow2Checker.check(path: overlap)
        #expect(broken.corruptions.contains { $0.contains("overlaps") }, "\(broken.corruptions)")
        #expect(throws: WispError.self) { _ = try Qcow2Checker.check(path: overlap, repair: true) }
    }

    /// Found by the qcow2 fuzz target: a refcount table whose last entry names the block
    /// entry 0 names made check compare (index + 1) × entries-per-block clusters one by one
    /// (2^28 with 16 KiB clusters and 1-bit refcounts; with 2 MiB clusters, 2^42). The image
    /// is qemu-img's; the hostile change is that one table entry.
    @Test func refcountTableNamingOneBlockEverywhereIsCheckedQuickly() throws {
        let dir = try TemporaryDirectory()
        let image = dir.file("shared.qcow2")
        try Qemu.img("create", "-f", "qcow2", "-o", "cluster_size=16384,refcount_bits=1", image, "1M")
        try Qemu.io(image, "write -P 7 0 64k")
        let clean = try Qcow2Checker.check(path: image)
        #expect(clean.isClean, "\(clean.text)")
        let file = try PosixFile(path: image, mode: .readWrite)
        let header = try file.readExactly(at: 0, count: 72)
        let tableOffset = header[48..<56].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let firstEntry = try file.readExactly(at: tableOffset, count: 8)
        let lastIndex = UInt64(16384 / 8 - 1)
        try file.write(firstEntry, at: tableOffset + lastIndex * 8)
        file.close()

        let started = Date()
        let report = try Qcow2Checker.check(path: image)
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(report.corruptions.contains { $0.contains("refcount block \(lastIndex)") && $0.contains("overlaps") },
                "\(report.corruptions)")
        // Block 2047 repeats block 0's counts (1 for every cluster of the clean file) for
        // clusters past the end of the file: each is a leak.
        let fileClusters = (try FileBlockDevice(path: image).size + 16383) / 16384
        #expect(report.leakedClusters == Int(fileClusters))
        #expect(throws: WispError.self) { _ = try Qcow2Checker.check(path: image, repair: true) }
    }
}
