import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

/// Judges: fsck.vfat -n must find nothing to say, mtools (mdir, mtype) must read names and
/// contents, fatlabel must read the label, for every FAT type mkfs.vfat would choose.
@Suite struct FATWriterTests {
    static let stamp: Int64 = 1_700_000_000

    static func sampleTree() -> WriterTree {
        WriterTree([
            .file("user-data", Array("#cloud-config\nhostname: judge\n".utf8)),
            .file("meta-data", Array("instance-id: iid-test\nlocal-hostname: judge\n".utf8)),
            .file("network-config", Array("version: 2\n".utf8)),
            .file("README.TXT", Array("exact 8.3\n".utf8)),
            .file("empty", []),
            .file("héllo wörld ✓.txt", Array("unicode\n".utf8)),
            .file("a name with spaces and a very long tail that needs several LFN entries.conf", Array("lfn\n".utf8)),
            .directory("scripts", [
                .file("run.sh", Array("#!/bin/sh\necho hi\n".utf8), permissions: 0o755),
                .directory("deeper", [.file("note.txt", Array(repeating: UInt8(ascii: "x"), count: 5000))]),
            ]),
        ])
    }

    /// fsck.vfat -n prints its banner and one summary line when the volume is clean.
    static func expectClean(_ path: String) throws {
        let result = try ToolRunner.run("fsck.vfat", ["-n", path])
        #expect(result.status == 0, "fsck.vfat -n exited \(result.status): \(result.stdoutText)\(result.stderrText)")
        let lines = result.stdoutText.split(separator: "\n")
        #expect(lines.count == 2 && lines.last?.contains("files,") == true,
                "fsck.vfat -n had remarks:\n\(result.stdoutText)\(result.stderrText)")
    }

    static func mtype(_ image: String, _ path: String) throws -> String {
        try ToolRunner.check("mtype", ["-i", image, "::" + path]).stdoutText
    }

    static func checkSample(_ path: String) throws {
        try expectClean(path)
        let listing = try ToolRunner.check("mdir", ["-i", path, "::/"]).stdoutText
        #expect(listing.contains("Volume in drive : is CIDATA"), "\(listing)")
        for name in ["user-data", "meta-data", "network-config", "héllo wörld ✓.txt",
                     "a name with spaces and a very long tail that needs several LFN entries.conf"] {
            #expect(listing.contains(name), "mdir lacks \(name):\n\(listing)")
        }
        #expect(listing.contains("README   TXT"))
        #expect(try mtype(path, "/user-data") == "#cloud-config\nhostname: judge\n")
        #expect(try mtype(path, "/meta-data") == "instance-id: iid-test\nlocal-hostname: judge\n")
        #expect(try mtype(path, "/héllo wörld ✓.txt") == "unicode\n")
        #expect(try mtype(path, "/scripts/run.sh") == "#!/bin/sh\necho hi\n")
        let note = try mtype(path, "/scripts/deeper/note.txt")
        #expect(note.count == 5000 && note.allSatisfy { $0 == "x" })
        let label = try ToolRunner.check("fatlabel", [path]).stdoutText
        #expect(label.trimmingCharacters(in: .whitespacesAndNewlines) == "CIDATA")
        // The boot sector's copy of the label too (offset 43, or 71 on FAT32), which blkid
        // falls back to and which must match the root directory's volume-label entry.
        let handle = try #require(FileHandle(forReadingAtPath: path))
        let boot = Array(try handle.read(upToCount: 512) ?? Data())
        let isFAT32 = boot.count == 512 && boot[82..<90].elementsEqual("FAT32   ".utf8)
        let offset = isFAT32 ? 71 : 43
        #expect(boot.count == 512 && String(decoding: boot[offset..<(offset + 11)], as: UTF8.self) == "CIDATA     ")
    }

    @Test(arguments: [
        (UInt64?.none, FATWriter.FATType.fat12),
        (UInt64(2 << 20), .fat12),
        (UInt64(32 << 20), .fat16),
        (UInt64(600 << 20), .fat32),
    ])
    func mkfsSizedVolumesPassFsckAndMtools(size: UInt64?, expected: FATWriter.FATType) throws {
        let dir = try TemporaryDirectory("fat-writer")
        let path = dir.file("seed.img")
        let writer = FATWriter(size: size, timestamp: Self.stamp)
        #expect(try writer.geometry(for: Self.sampleTree()).type == expected)
        try writer.write(Self.sampleTree(), to: path, permissions: 0o600)
        try Self.checkSample(path)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        if let size { #expect((attributes[.size] as? UInt64) == size) }
        // The same size makes the same type with mkfs.vfat, the peer we follow.
        if let size {
            let peer = dir.file("peer.img")
            try ToolRunner.check("truncate", ["-s", String(size), peer])
            try ToolRunner.check("mkfs.vfat", ["-n", "CIDATA", peer])
            let info = try ToolRunner.check("file", ["-b", peer]).stdoutText
            let bits = expected == .fat12 ? "12" : (expected == .fat16 ? "16" : "32")
            #expect(info.contains("FAT (\(bits) bit)"), "mkfs.vfat chose otherwise: \(info)")
        }
    }

    /// Wisp's own FAT reader (FileSystemOpener) agrees with mtools on every type.
    @Test(arguments: [FATWriter.FATType.fat12, .fat16, .fat32])
    func wispsFATReaderReadsTheWriter(_ type: FATWriter.FATType) throws {
        let dir = try TemporaryDirectory("fat-writer")
        let path = dir.file("seed.img")
        let size: UInt64 = type == .fat12 ? 2 << 20 : (type == .fat16 ? 32 << 20 : 600 << 20)
        try FATWriter(size: size, timestamp: Self.stamp).write(Self.sampleTree(), to: path)
        let fs = try FileSystemOpener.open(try FileBlockDevice(path: path))
        #expect(fs.typeName == "vfat")
        #expect(fs.label == "CIDATA")
        let names = Set(try fs.list(directory: fs.rootInode).map(\.name))
        #expect(names == Set(Self.sampleTree().entries.map(\.name)), "\(names)")
        #expect(try fs.readFile("/user-data") == Array("#cloud-config\nhostname: judge\n".utf8))
        #expect(try fs.readFile("/scripts/deeper/note.txt") == Array(repeating: UInt8(ascii: "x"), count: 5000))
        #expect(try fs.readFile("/héllo wörld ✓.txt") == Array("unicode\n".utf8))
    }

    @Test func forcedFAT32OnASmallImage() throws {
        let dir = try TemporaryDirectory("fat-writer")
        let path = dir.file("small32.img")
        let writer = FATWriter(size: 40 << 20, fatType: .fat32, timestamp: Self.stamp)
        try writer.write(Self.sampleTree(), to: path)
        #expect(try writer.geometry(for: Self.sampleTree()).type == .fat32)
        try Self.checkSample(path)
    }

    @Test func shortNameAliasesAreUniqueAndLongNamesSurvive() throws {
        let dir = try TemporaryDirectory("fat-writer")
        let path = dir.file("aliases.img")
        var entries = (1...30).map { WriterTree.Entry.file("same-prefix-\($0).txt", Array("\($0)\n".utf8)) }
        entries.append(.file("SAME-P~1.TXT", Array("exact\n".utf8)))
        entries.append(.directory("many", (0..<200).map { .file("entry number \($0) with a long name", Array("\($0)".utf8)) }))
        try FATWriter(timestamp: Self.stamp).write(WriterTree(entries), to: path)
        try Self.expectClean(path)
        let listing = try ToolRunner.check("mdir", ["-i", path, "::/"]).stdoutText
        for index in 1...30 { #expect(listing.contains("same-prefix-\(index).txt")) }
        // The exact 8.3 name keeps "SAME-P~1"; the generated aliases take the next numbers.
        // mtools shows a long name only when its LFN checksum matches the alias, so these
        // listings also check the checksums.
        #expect(listing.contains("SAME-P~2 TXT"))
        #expect(listing.contains("SAME-~10 TXT"))
        #expect(try Self.mtype(path, "/SAME-P~1.TXT") == "exact\n")
        #expect(try Self.mtype(path, "/same-prefix-1.txt") == "1\n")
        #expect(try Self.mtype(path, "/same-prefix-30.txt") == "30\n")
        let many = try ToolRunner.check("mdir", ["-i", path, "-b", "::/many"]).stdoutText
        #expect(many.split(separator: "\n").count == 200, "\(many)")
        #expect(try Self.mtype(path, "/many/entry number 199 with a long name") == "199")
    }

    @Test func hostileNamesAndSizesGetClearErrorsAndNoFile() throws {
        let dir = try TemporaryDirectory("fat-writer")
        let path = dir.file("bad.img")
        let cases: [(FATWriter, WriterTree, String)] = [
            (FATWriter(timestamp: Self.stamp), WriterTree([.file("a:b", [])]), "':'"),
            (FATWriter(timestamp: Self.stamp), WriterTree([.file("Case", []), .file("CASE", [])]), "only in case"),
            (FATWriter(timestamp: Self.stamp), WriterTree([.file("trailing.", [])]), "ends with '.'"),
            (FATWriter(timestamp: Self.stamp), WriterTree([.file("tab\there", [])]), "control character"),
            (FATWriter(timestamp: Self.stamp), WriterTree([.symlink("link", target: "x")]), "symlink"),
            (FATWriter(size: 128 << 10, timestamp: Self.stamp), WriterTree([.file("big", [UInt8](repeating: 1, count: 1 << 20))]), "clusters"),
            (FATWriter(size: 1 << 20, fatType: .fat32, timestamp: Self.stamp), WriterTree([]), "cannot hold a FAT32"),
            (FATWriter(label: "bad:label", timestamp: Self.stamp), WriterTree([]), "volume label"),
            (FATWriter(size: 1 << 50, timestamp: Self.stamp), WriterTree([]), "larger than"),
            (FATWriter(size: 2 << 20, timestamp: Self.stamp), WriterTree((0..<600).map { .file("f\($0)", []) }), "root"),
        ]
        for (writer, tree, message) in cases {
            #expect {
                try writer.write(tree, to: path)
            } throws: { error in
                "\(error)".contains(message)
            }
            #expect(!FileManager.default.fileExists(atPath: path))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }
}
