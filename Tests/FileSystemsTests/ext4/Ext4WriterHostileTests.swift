import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

/// Hostile and mistaken input: each is refused with a WispError naming the path, the
/// writer stays usable, and the image it finally writes is clean.
@Suite struct Ext4WriterHostileTests {
    static let m = Ext4EntryMetadata(permissions: 0o644, modificationTime: Timestamp(seconds: 1_700_000_000))

    static func expectRefused(_ kind: WispError.Kind = .invalidArgument, naming needle: String,
                              sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected a refusal naming \(needle)", sourceLocation: sourceLocation)
        } catch let error as WispError {
            #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.contains(needle), "\(error.message) should name \(needle)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("not a WispError: \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func refusedEntriesLeaveAUsableWriter() throws {
        let dir = try TemporaryDirectory("ext4w-hostile")
        let image = dir.file("hostile.img")
        let options = Ext4WriterOptions(size: 64 << 20, inodeCount: 64, timestamp: Timestamp(seconds: 1_700_000_000))
        let w = try Ext4Writer(path: image, options: options)
        let m = Self.m
        try w.addDirectory("/etc", metadata: m)
        try w.addFile("/etc/hostname", metadata: m, contents: Array("h\n".utf8))

        Self.expectRefused(naming: "/a\0b") { try w.addFile("/a\0b", metadata: m, contents: []) }
        Self.expectRefused(naming: "/etc/../escape") { try w.addFile("/etc/../escape", metadata: m, contents: []) }
        Self.expectRefused(naming: "../x") { try w.addSymlink("../x", target: "y", metadata: m) }
        Self.expectRefused(naming: "/etc/hostname") { try w.addFile("/etc/hostname", metadata: m, contents: [1]) }
        Self.expectRefused(naming: "/etc") { try w.addDirectory("/etc", metadata: m) }
        Self.expectRefused(naming: "/etc/hostname/below") { try w.addFile("/etc/hostname/below", metadata: m, contents: []) }
        let long = String(repeating: "n", count: 256)
        Self.expectRefused(naming: long) { try w.addFile("/" + long, metadata: m, contents: []) }
        Self.expectRefused(naming: "/huge") {
            try w.addFile("/huge", metadata: m, size: UInt64.max) { _ in }
        }
        Self.expectRefused(naming: "/too-long") {
            try w.addFile("/too-long", metadata: m, size: 3) { try $0.write([1, 2, 3, 4]) }
        }
        Self.expectRefused(naming: "/too-short") {
            try w.addFile("/too-short", metadata: m, size: 10) { try $0.write([1, 2, 3]) }
        }
        Self.expectRefused(naming: "/full") {
            try w.addFile("/full", metadata: m, size: 200 << 20) { sink in
                let block = [UInt8](repeating: 0x5A, count: 1 << 20)
                for _ in 0..<200 { try sink.write(block) }
            }
        }
        struct Interrupted: Error {}
        #expect(throws: Interrupted.self) {
            try w.addFile("/interrupted", metadata: m, size: 8192) { sink in
                try sink.write([UInt8](repeating: 1, count: 5000))
                throw Interrupted()
            }
        }
        #expect(try !w.contains("/interrupted"))
        Self.expectRefused(naming: "/bad-perm") {
            try w.addFile("/bad-perm", metadata: Ext4EntryMetadata(permissions: 0o10000, modificationTime: m.modificationTime), contents: [])
        }
        Self.expectRefused(naming: "/bad-time") {
            try w.addFile("/bad-time", metadata: Ext4EntryMetadata(permissions: 0o644, modificationTime: Timestamp(seconds: 1 << 40)), contents: [])
        }
        Self.expectRefused(naming: "/bad-nsec") {
            try w.addFile("/bad-nsec", metadata: Ext4EntryMetadata(permissions: 0o644, modificationTime: Timestamp(seconds: 0, nanoseconds: 1_000_000_000)), contents: [])
        }
        Self.expectRefused(naming: "/bad-xattr") {
            var bad = m
            bad.xattrs = ["nonsense.name": [1]]
            try w.addFile("/bad-xattr", metadata: bad, contents: [])
        }
        Self.expectRefused(naming: "/fat-xattrs") {
            var fat = m
            fat.xattrs = ["user.a": [UInt8](repeating: 1, count: 3000), "user.b": [UInt8](repeating: 2, count: 3000)]
            try w.addFile("/fat-xattrs", metadata: fat, contents: [])
        }
        Self.expectRefused(naming: "/bad-acl") {
            var bad = m
            bad.xattrs = ["system.posix_acl_access": [9, 9, 9]]
            try w.addDirectory("/bad-acl", metadata: bad)
        }
        Self.expectRefused(naming: "/empty-link") { try w.addSymlink("/empty-link", target: "", metadata: m) }
        Self.expectRefused(naming: "/nul-link") { try w.addSymlink("/nul-link", target: "a\0b", metadata: m) }
        Self.expectRefused(naming: "/long-link") {
            try w.addSymlink("/long-link", target: String(repeating: "x", count: 4096), metadata: m)
        }
        Self.expectRefused(naming: "/bad-dev") {
            try w.addSpecialFile("/bad-dev", .blockDevice(major: 4096, minor: 0), metadata: m)
        }
        Self.expectRefused(naming: "/link-to-nothing") { try w.addHardLink("/link-to-nothing", target: "/missing") }
        Self.expectRefused(naming: "/link-to-dir") { try w.addHardLink("/link-to-dir", target: "/etc") }
        Self.expectRefused(naming: "/") { try w.remove("/") }
        Self.expectRefused(.notFound, naming: "/not-there") { try w.remove("/not-there") }

        try w.addFile("/after", metadata: m, contents: [UInt8](repeating: 3, count: 10_000))

        // 64 inodes asked for (one group of 64): 11 reserved, 3 used so far, /many takes one.
        var added = 0
        Self.expectRefused(naming: "/many/") {
            for i in 0..<100 {
                try w.addFile("/many/\(i)", metadata: m, contents: [])
                added += 1
            }
        }
        #expect(added == 64 - 11 - 3 - 1)

        // The writer still works and what it made is clean.
        try w.addHardLink("/many/0-again", target: "/many/0")
        Self.expectRefused(naming: "/many/0-again") { try w.addHardLink("/many/0-again", target: "/many/0") }
        try w.finish()
        Self.expectRefused(naming: "/late") { try w.addFile("/late", metadata: m, contents: []) }
        try Ext4Judge.fsck(image)
        let fs = try Ext4Reader(device: try FileBlockDevice(path: image))
        #expect(try fs.readFile("/after") == [UInt8](repeating: 3, count: 10_000))
        #expect(try fs.readFile("/etc/hostname") == Array("h\n".utf8))
        #expect(throws: WispError.self) { try fs.resolve("/full") }
        #expect(throws: WispError.self) { try fs.resolve("/interrupted") }
    }

    @Test func badOptionsAreRefused() throws {
        let dir = try TemporaryDirectory("ext4w-options")
        let stamp = Timestamp(seconds: 1_700_000_000)
        Self.expectRefused(naming: dir.file("small.img")) {
            _ = try Ext4Writer(path: dir.file("small.img"), options: Ext4WriterOptions(size: 1 << 20, timestamp: stamp))
        }
        Self.expectRefused(naming: dir.file("label.img")) {
            _ = try Ext4Writer(path: dir.file("label.img"), options: Ext4WriterOptions(size: 64 << 20, label: "a label far too long", timestamp: stamp))
        }
        Self.expectRefused(naming: dir.file("inodes.img")) {
            _ = try Ext4Writer(path: dir.file("inodes.img"), options: Ext4WriterOptions(size: 64 << 20, inodeCount: 1_000_000, timestamp: stamp))
        }
        Self.expectRefused(naming: dir.file("nosize.img")) {
            _ = try Ext4Writer(path: dir.file("nosize.img"), options: Ext4WriterOptions(timestamp: stamp))
        }
        // Nothing is left behind by a refused writer.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }
}
