import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

/// Judge: xorriso. Images it writes (Rock Ridge with Joliet, relocated deep directories,
/// Joliet alone, plain ISO 9660) and images Wisp's seed writer makes read back exactly as
/// `xorriso -osirrox on -extract` writes them out.
@Suite("ISO 9660 reader", .serialized)
struct ISO9660ReaderTests {
    static func open(_ path: String, preferring: ISO9660Reader.Hierarchy? = nil) throws -> ISO9660Reader {
        try ISO9660Reader(device: try FileBlockDevice(path: path), preferring: preferring)
    }

    static func expectSame(_ fs: any FileSystem, as judge: (tree: [String: XFSExpected], mtimes: [String: Int64]),
                           comparingTimes: Bool = true) throws {
        let found = try ISOFixture.walk(fs)
        let missing = Set(judge.tree.keys).subtracting(found.tree.keys).sorted()
        let extra = Set(found.tree.keys).subtracting(judge.tree.keys).sorted()
        #expect(missing.isEmpty && extra.isEmpty, "missing: \(missing.prefix(5)) extra: \(extra.prefix(5))")
        let differing = judge.tree.keys.filter { found.tree[$0] != nil && found.tree[$0] != judge.tree[$0] }.sorted()
        #expect(differing.isEmpty, "differ from xorriso's extraction: \(differing.prefix(8)) e.g. \(differing.first.map { "\(String(describing: found.tree[$0]).prefix(200)) vs \(String(describing: judge.tree[$0]).prefix(200))" } ?? "")")
        if comparingTimes {
            let times = judge.mtimes.keys.filter { found.mtimes[$0] != nil && found.mtimes[$0] != judge.mtimes[$0] }.sorted()
            #expect(times.isEmpty, "modification times differ: \(times.prefix(5).map { "\($0): \(found.mtimes[$0]!) vs \(judge.mtimes[$0]!)" })")
        }
        #expect(judge.tree.count > 0)
    }

    @Test func rockRidgeWithJolietReadsAsXorrisoExtracts() throws {
        let fixture = try ISOFixture()
        let iso = try fixture.mkisofs("rr.iso", ["-R", "-J", "-joliet-long", "-V", "WISP_TEST_21"])
        let fs = try Self.open(iso)
        #expect(fs.hierarchy == .rockRidge)
        #expect(fs.label == "WISP_TEST_21")
        #expect(fs.hasJoliet)
        let blkid = try ToolRunner.check("blkid", ["-p", "-o", "value", "-s", "UUID", iso]).stdoutText
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(fs.uuid == blkid, "blkid says the UUID is \(blkid)")
        try Self.expectSame(fs, as: try fixture.extracted(iso))
        // The paths the issue names, through the FileSystem protocol's resolver.
        #expect(try fs.readFile("/\(ISOFixture.deepPath)/leaf.txt") == Array("deep leaf\n".utf8))
        #expect(try fs.readlink(inode: fs.resolve("/long-link", followFinalSymlink: false).inode) == ISOFixture.longTarget)
        #expect(try fs.readFile("/dir-link/d03/d04/d05/d06/d07/d08/d09/sibling.txt") == Array("sibling\n".utf8))
        if getuid() == 0 {
            let owned = try fs.stat(path: "/hello.txt")
            #expect(owned.uid == 1234 && owned.gid == 5678)
        }
        // The same image read through its Joliet volume holds the same bytes.
        let joliet = try Self.open(iso, preferring: .joliet)
        #expect(try joliet.readFile("/random.bin") == fs.readFile("/random.bin"))
    }

    @Test func relocatedDeepDirectoriesReadWhereTheyBelong() throws {
        let fixture = try ISOFixture()
        // ISO 9660 allows eight levels; deeper ones move to RR_MOVED with CL/PL/RE links.
        let iso = fixture.directory.file("reloc.iso")
        try ToolRunner.check("xorriso", ["-compliance", "deep_paths_off:long_paths_off", "-rr_reloc_dir", "RR_MOVED",
                                         "-outdev", iso, "-map", fixture.source, "/"])
        let plain = try Self.open(iso, preferring: .plain)
        #expect(try plain.list(directory: plain.rootInode).contains { $0.name == "RR_MOVED" }, "xorriso relocated nothing")
        let fs = try Self.open(iso)
        #expect(fs.hierarchy == .rockRidge)
        try Self.expectSame(fs, as: try fixture.extracted(iso))

        // genisoimage relocates into rr_moved by its own rules: a second writer, same reading.
        let genisoimage = fixture.directory.file("genisoimage.iso")
        try ToolRunner.check("genisoimage", ["-quiet", "-R", "-J", "-joliet-long", "-o", genisoimage, fixture.source])
        let genPlain = try Self.open(genisoimage, preferring: .plain)
        #expect(try genPlain.list(directory: genPlain.rootInode).contains { $0.name.lowercased() == "rr_moved" })
        try Self.expectSame(try Self.open(genisoimage), as: try fixture.extracted(genisoimage))
    }

    @Test func jolietAloneReadsAsXorrisoExtracts() throws {
        let fixture = try ISOFixture()
        let iso = try fixture.mkisofs("joliet.iso", ["--norock", "-J", "-joliet-long"])
        let fs = try Self.open(iso)
        #expect(fs.hierarchy == .joliet)
        try Self.expectSame(fs, as: try fixture.extracted(iso))
        #expect(try fs.readFile("/héllo wörld ✓ 日本.txt") == Array("unicode\n".utf8))
    }

    @Test func plainISO9660ReadsAsXorrisoExtracts() throws {
        let fixture = try ISOFixture()
        let tree = fixture.directory.file("plain")
        try FileManager.default.createDirectory(atPath: tree + "/BOOT/GRUB", withIntermediateDirectories: true)
        try Data("linux /VMLINUZ\n".utf8).write(to: URL(fileURLWithPath: tree + "/BOOT/GRUB/GRUB.CFG"))
        try Data("no extension\n".utf8).write(to: URL(fileURLWithPath: tree + "/NOEXT"))
        let iso = try fixture.mkisofs("plain.iso", ["--norock", "-V", "PLAIN"], from: tree)
        let fs = try Self.open(iso)
        #expect(fs.hierarchy == .plain)
        try Self.expectSame(fs, as: try fixture.extracted(iso))
    }

    @Test func wispSeedImagesReadAsXorrisoExtracts() throws {
        let dir = try TemporaryDirectory("iso-seed-read")
        let path = dir.file("seed.iso")
        try ISO9660Writer(timestamp: ISO9660WriterTests.stamp).write(ISO9660WriterTests.sampleTree(), to: path)
        let fixture = try ISOFixture()
        let fs = try Self.open(path)
        #expect(fs.hierarchy == .rockRidge && fs.label == "cidata")
        try Self.expectSame(fs, as: try fixture.extracted(path))
        #expect(try fs.stat(path: "/user-data").modificationTime.seconds == ISO9660WriterTests.stamp)
        // Through FileSystemOpener, as inspection and `wisp fs` open it.
        let opened = try FileSystemOpener.open(try FileBlockDevice(path: path))
        #expect(opened.typeName == "iso9660")
        #expect(try opened.readFile("/meta-data") == Array("instance-id: iid-test\nlocal-hostname: judge\n".utf8))
    }
}
