import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

/// Judges: isoinfo (genisoimage) and xorriso read what ISO9660Writer writes, through Rock
/// Ridge, Joliet and the plain ISO 9660 hierarchy.
@Suite struct ISO9660WriterTests {
    static let stamp: Int64 = 1_700_000_000  // 2023-11-14 22:13:20 UTC

    static let longName = String(repeating: "a-very-long-file-name-", count: 8) + "end.txt"  // 183 bytes: needs CE
    static func sampleTree() -> WriterTree {
        WriterTree([
            .file("user-data", Array("#cloud-config\nhostname: judge\n".utf8), permissions: 0o600),
            .file("meta-data", Array("instance-id: iid-test\nlocal-hostname: judge\n".utf8)),
            .file("network-config", Array("version: 2\n".utf8)),
            .file("empty", []),
            .file("héllo wörld ✓.txt", Array("unicode\n".utf8)),
            .file(longName, Array("long\n".utf8)),
            .file("same-prefix-1.txt", Array("one\n".utf8)),
            .file("same-prefix-2.txt", Array("two\n".utf8)),
            .symlink("link-to-user-data", target: "user-data"),
            .symlink("absolute-link", target: "/etc/../etc/hostname"),
            .directory("scripts", [
                .file("run.sh", Array("#!/bin/sh\necho hi\n".utf8), permissions: 0o755),
                .directory("deeper", [.file("note.txt", Array(repeating: UInt8(ascii: "x"), count: 5000))]),
            ]),
        ])
    }

    @Test func isoinfoReadsRockRidgeJolietAndContents() throws {
        let dir = try TemporaryDirectory("iso-writer")
        let path = dir.file("seed.iso")
        try ISO9660Writer(timestamp: Self.stamp).write(Self.sampleTree(), to: path, permissions: 0o600)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)

        let info = try ToolRunner.check("isoinfo", ["-d", "-i", path]).stdoutText
        #expect(info.contains("Volume id: cidata"))
        #expect(info.contains("Rock Ridge signatures version 1 found"))
        #expect(info.contains("Joliet with UCS level 3 found"))

        let rock = try ToolRunner.check("isoinfo", ["-R", "-l", "-i", path]).stdoutText
        for name in ["user-data", "meta-data", "network-config", "empty", "héllo wörld ✓.txt", Self.longName,
                     "same-prefix-1.txt", "same-prefix-2.txt", "scripts", "run.sh", "deeper", "note.txt"] {
            #expect(rock.contains(" \(name)"), "isoinfo -R -l lacks \(name):\n\(rock)")
        }
        #expect(rock.contains("-rw-------"))  // user-data's mode through PX
        #expect(rock.contains("-rwxr-xr-x"))  // run.sh
        #expect(rock.contains("link-to-user-data -> user-data"))
        #expect(rock.contains("absolute-link -> /etc/../etc/hostname"))

        let joliet = try ToolRunner.check("isoinfo", ["-J", "-l", "-i", path]).stdoutText
        for name in ["user-data", "meta-data", "network-config", "run.sh", "note.txt"] {
            #expect(joliet.contains(" \(name) "), "isoinfo -J -l lacks \(name):\n\(joliet)")
        }
        // isoinfo prints Joliet names in Latin-1; xorriso reading only Joliet shows UTF-8.
        let jolietTree = try ToolRunner.check("xorriso", ["-rockridge", "off", "-joliet", "on", "-indev", path,
                                                         "-find", "/", "-exec", "lsdl"]).stdoutText
        #expect(jolietTree.contains("'/héllo wörld ✓.txt'"), "\(jolietTree)")
        #expect(jolietTree.contains("'/scripts/deeper/note.txt'"))
        // Joliet holds 64 characters: the long name is cut, not lost.
        #expect(joliet.contains(String(Self.longName.prefix(40))))

        let plain = try ToolRunner.check("isoinfo", ["-l", "-i", path]).stdoutText
        #expect(plain.contains("USER_DAT.;1"))
        #expect(plain.contains("SAME_PRE.TXT;1") && plain.contains("SAME_PR1.TXT;1"))

        for (isoPath, expected) in [("/user-data", "#cloud-config\nhostname: judge\n"),
                                    ("/meta-data", "instance-id: iid-test\nlocal-hostname: judge\n"),
                                    ("/scripts/run.sh", "#!/bin/sh\necho hi\n"),
                                    ("/scripts/deeper/note.txt", String(repeating: "x", count: 5000))] {
            let rockText = try ToolRunner.check("isoinfo", ["-R", "-x", isoPath, "-i", path]).stdoutText
            let rockMatches = rockText == expected
            #expect(rockMatches, "isoinfo -R -x \(isoPath) gave \(rockText.prefix(80))")
            let jolietText = try ToolRunner.check("isoinfo", ["-J", "-x", isoPath, "-i", path]).stdoutText
            let jolietMatches = jolietText == expected
            #expect(jolietMatches, "isoinfo -J -x \(isoPath) gave \(jolietText.prefix(80))")
        }
    }

    @Test func xorrisoListsTheTreeWithoutComplaint() throws {
        let dir = try TemporaryDirectory("iso-writer")
        let path = dir.file("seed.iso")
        try ISO9660Writer(timestamp: Self.stamp).write(Self.sampleTree(), to: path)
        let result = try ToolRunner.check("xorriso", ["-abort_on", "WARNING", "-indev", path, "-find", "/", "-exec", "lsdl"])
        let listing = result.stdoutText
        for name in ["'/user-data'", "'/meta-data'", "'/scripts/deeper/note.txt'", "'/\(Self.longName)'",
                     "'/héllo wörld ✓.txt'", "'/link-to-user-data' -> 'user-data'"] {
            #expect(listing.contains(name), "xorriso lsdl lacks \(name):\n\(listing)")
        }
        #expect(!result.stderrText.contains("FAILURE") && !result.stderrText.contains("SORRY"), "\(result.stderrText)")
        let extracted = dir.file("out")
        try ToolRunner.check("xorriso", ["-osirrox", "on", "-indev", path, "-extract", "/scripts/deeper/note.txt", extracted])
        #expect(try Data(contentsOf: URL(fileURLWithPath: extracted)) == Data(repeating: UInt8(ascii: "x"), count: 5000))
    }

    @Test func outputIsDeterministicForAFixedTimestamp() throws {
        let a = try ISO9660Writer(timestamp: Self.stamp).image(Self.sampleTree())
        let b = try ISO9660Writer(timestamp: Self.stamp).image(Self.sampleTree())
        let c = try ISO9660Writer(timestamp: Self.stamp + 1).image(Self.sampleTree())
        #expect(a == b)
        #expect(a != c)
        #expect(a.count % 2048 == 0)
    }

    @Test func manyFilesSpanSeveralDirectorySectors() throws {
        let dir = try TemporaryDirectory("iso-writer")
        let path = dir.file("many.iso")
        let entries = (0..<400).map { WriterTree.Entry.file("file-number-\($0)-with-a-longer-name.conf", Array("\($0)\n".utf8)) }
        try ISO9660Writer(timestamp: Self.stamp).write(WriterTree(entries), to: path)
        let rock = try ToolRunner.check("isoinfo", ["-R", "-l", "-i", path]).stdoutText
        let joliet = try ToolRunner.check("isoinfo", ["-J", "-l", "-i", path]).stdoutText
        for index in [0, 1, 199, 399] {
            #expect(rock.contains("file-number-\(index)-with-a-longer-name.conf"))
            #expect(joliet.contains("file-number-\(index)-with-a-longer-name.conf"))
        }
        let count = rock.split(separator: "\n").filter { $0.contains("file-number-") }.count
        #expect(count == 400)
        let text = try ToolRunner.check("isoinfo", ["-R", "-x", "/file-number-399-with-a-longer-name.conf", "-i", path]).stdoutText
        #expect(text == "399\n")
    }

    @Test func hostileTreesGetClearErrorsAndNoFile() throws {
        let dir = try TemporaryDirectory("iso-writer")
        let path = dir.file("bad.iso")
        var deep = WriterTree.Entry.file("leaf", [1])
        for level in 0..<9 { deep = .directory("d\(level)", [deep]) }
        let cases: [(WriterTree, String)] = [
            (WriterTree([deep]), "ISO 9660 allows 8"),
            (WriterTree([.file(String(repeating: "n", count: 300), [])]), "at most 255"),
            (WriterTree([.file("a/b", [])]), "contains '/'"),
            (WriterTree([.file("twice", []), .file("twice", [])]), "appears twice"),
            (WriterTree([.symlink("s", target: String(repeating: "x/", count: 200))]), "too long"),
        ]
        for (tree, message) in cases {
            #expect {
                try ISO9660Writer(timestamp: Self.stamp).write(tree, to: path)
            } throws: { error in
                "\(error)".contains(message)
            }
            #expect(!FileManager.default.fileExists(atPath: path))
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(leftovers.isEmpty, "temporary files left behind: \(leftovers)")
    }
}
