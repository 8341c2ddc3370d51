import Foundation
import Testing
import WispCore
import WispTestSupport

/// Runs the built `wisp fs` binary against a GPT disk whose FAT partition mtools filled.
@Suite struct FSCommandTests {
    static let environment = ["LC_ALL": "C.UTF-8", "TZ": "UTC", "MTOOLS_SKIP_CHECK": "1"]

    struct Fixture {
        let directory: TemporaryDirectory
        let disk: String
        let tree: String
        let big: [UInt8]
    }

    static func wisp() throws -> String { try WispBinary.path() }

    static func makeFixture() throws -> Fixture {
        let directory = try TemporaryDirectory("fscli")
        let disk = directory.file("disk.img"), fat = directory.file("fat.img"), tree = directory.file("tree")
        let big = (0..<3_500_000).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
        try FileManager.default.createDirectory(atPath: tree + "/dir/sub", withIntermediateDirectories: true)
        try Data(big).write(to: URL(fileURLWithPath: tree + "/big.bin"))
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: tree + "/dir/hello.txt"))
        try Data("nested\n".utf8).write(to: URL(fileURLWithPath: tree + "/dir/sub/Nested File.txt"))
        for file in ["big.bin", "dir/hello.txt", "dir/sub/Nested File.txt", "dir/sub", "dir"] {
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_650_000_000)],
                                                  ofItemAtPath: tree + "/" + file)
        }
        try ToolRunner.check("truncate", ["-s", "48M", disk])
        try ToolRunner.check("sgdisk", ["-n", "1:2048:0", "-t", "1:ef00", "-c", "1:ESP", disk])
        try ToolRunner.check("mkfs.vfat", ["-C", "-n", "MYESP", fat, "\(40 * 1024)"])
        try ToolRunner.check("mcopy", ["-s", "-m", "-i", fat, tree + "/big.bin", tree + "/dir", "::/"], environment: environment)
        try ToolRunner.check("dd", ["if=\(fat)", "of=\(disk)", "bs=1M", "seek=1", "conv=notrunc", "status=none"])
        return Fixture(directory: directory, disk: disk, tree: tree, big: big)
    }

    @Test func lsListsNamesLongAndJSON() throws {
        let f = try Self.makeFixture()
        let wisp = try Self.wisp()
        #expect(try ToolRunner.check(wisp, ["fs", "ls", f.disk]).stdoutText == "big.bin\ndir\n")
        #expect(try ToolRunner.check(wisp, ["fs", "ls", f.disk, "/dir/sub"]).stdoutText == "Nested File.txt\n")
        let long = try ToolRunner.check(wisp, ["fs", "ls", "-l", f.disk, "/dir"]).stdoutText
        #expect(long.hasPrefix("-rwxr-xr-x 1 0 0    6 2022-04-15 05:20 hello.txt\ndrwxr-xr-x 2 0 0 "))
        #expect(long.hasSuffix(" 2022-04-15 05:20 sub\n"))
        let json = try ToolRunner.check(wisp, ["fs", "ls", "--json", f.disk, "/", "--partition", "MYESP"]).stdout
        let entries = try #require(try JSONSerialization.jsonObject(with: json) as? [[String: Any]])
        #expect(entries.map { $0["name"] as? String } == ["big.bin", "dir"])
        #expect(entries[0]["size"] as? Int == f.big.count)
        #expect(entries[0]["type"] as? String == "regular")
        #expect(entries[1]["mode-string"] as? String == "drwxr-xr-x")
    }

    @Test func catStreamsWholeFiles() throws {
        let f = try Self.makeFixture()
        let wisp = try Self.wisp()
        #expect(try ToolRunner.check(wisp, ["fs", "cat", f.disk, "/dir/hello.txt"]).stdoutText == "hello\n")
        let big = try ToolRunner.check(wisp, ["fs", "cat", f.disk, "/big.bin", "--partition", "1"]).stdout
        #expect(Array(big) == f.big)
    }

    @Test func getCopiesATree() throws {
        let f = try Self.makeFixture()
        let wisp = try Self.wisp()
        let out = f.directory.file("out")
        try ToolRunner.check(wisp, ["fs", "get", f.disk, "/dir", "-o", out])
        // diff -r is the judge of contents; stat of the times.
        try ToolRunner.check("diff", ["-r", f.tree + "/dir", out])
        let attributes = try FileManager.default.attributesOfItem(atPath: out + "/sub/Nested File.txt")
        #expect((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 == 1_650_000_000)
        try ToolRunner.check(wisp, ["fs", "get", f.disk, "/big.bin", "-o", f.directory.file("big.copy")])
        try ToolRunner.check("cmp", [f.tree + "/big.bin", f.directory.file("big.copy")])
    }

    @Test func errorsAreOneLineAndExitNonZero() throws {
        let f = try Self.makeFixture()
        let wisp = try Self.wisp()
        let missing = try ToolRunner.run(wisp, ["fs", "cat", f.disk, "/nope.txt"])
        #expect(missing.status == 1)
        #expect(missing.stderrText == "wisp: /nope.txt: no such file or directory\n")
        // Asking cat for a directory fails like any failure (exit 1); only malformed
        // command-line values are usage errors (exit 64).
        let directory = try ToolRunner.run(wisp, ["fs", "cat", f.disk, "/dir"])
        #expect(directory.status == 1)
        #expect(directory.stderrText.contains("not a regular file"))
        let badPartition = try ToolRunner.run(wisp, ["fs", "ls", f.disk, "--partition", "9"])
        #expect(badPartition.status == 1)
        #expect(badPartition.stderrText.contains("no partition or filesystem matches \"9\""))
        let help = try ToolRunner.check(wisp, ["fs", "ls", "--help"]).stdoutText
        #expect(help.contains("--partition"))
    }
}

@Suite struct ImageInfoGuestTests {
    /// `wisp image info` adds the partition table and filesystems, as sfdisk and blkid see them.
    @Test func imageInfoListsPartitionsAndFilesystems() throws {
        let f = try FSCommandTests.makeFixture()
        let wisp = try FSCommandTests.wisp()
        let text = try ToolRunner.check(wisp, ["image", "info", f.disk]).stdoutText
        let uuid = try ToolRunner.check("blkid", ["-p", "-o", "value", "-s", "UUID", "--offset", "1048576", f.disk]).stdoutText
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(text.contains("partition table: gpt, 512-byte sectors"))
        #expect(text.contains("EFI System, name \"ESP\"; vfat label \"MYESP\" uuid \(uuid)"))
        let json = try ToolRunner.check(wisp, ["image", "info", "--json", f.disk]).stdout
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        let table = try #require(object["partition-table"] as? [String: Any])
        let sfdisk = try #require(try JSONSerialization.jsonObject(
            with: ToolRunner.check("sfdisk", ["--json", f.disk]).stdout) as? [String: Any])
        let judged = try #require(sfdisk["partitiontable"] as? [String: Any])
        #expect(table["disk-guid"] as? String == (judged["id"] as? String)?.lowercased())
        #expect(table["scheme"] as? String == "gpt")
        let partitions = try #require(table["partitions"] as? [[String: Any]])
        #expect(partitions.count == 1)
        #expect(partitions[0]["start-offset"] as? Int == 1 << 20)
        #expect(partitions[0]["name"] as? String == "ESP")
        #expect(partitions[0]["type-guid"] as? String == "c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
        // The same PartitionInfo/FileSystemInfo as `wisp inspect --json`.
        let filesystems = try #require(table["filesystems"] as? [[String: Any]])
        #expect(filesystems.count == 1)
        #expect(filesystems[0]["partition"] as? Int == 1)
        #expect(filesystems[0]["type"] as? String == "vfat")
        #expect(filesystems[0]["label"] as? String == "MYESP")
        #expect(filesystems[0]["uuid"] as? String == uuid)
        #expect(object["format"] as? String == "raw")
    }
}
