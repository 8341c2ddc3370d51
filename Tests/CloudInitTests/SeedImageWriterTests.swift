import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import CloudInit

/// Judges: blkid finds the seed the way cloud-init's NoCloud does (LABEL=cidata / CIDATA);
/// isoinfo and mtools read the files; cloud-localds, given the same files, makes an image
/// with the same names and contents.
@Suite struct SeedImageWriterTests {
    static let seed = NoCloudSeed(
        userData: Array("#cloud-config\nhostname: seedtest\nruncmd: [ls]\n".utf8),
        metaData: Array("instance-id: iid-seedtest\nlocal-hostname: seedtest\n".utf8),
        vendorData: Array("#cloud-config\ntimezone: UTC\n".utf8),
        networkConfig: Array("version: 2\nethernets:\n  eth0:\n    dhcp4: true\n".utf8))

    static func blkid(_ path: String) throws -> [String: String] {
        let text = try ToolRunner.check("blkid", ["-p", "-o", "export", path]).stdoutText
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let pair = line.split(separator: "=", maxSplits: 1)
            if pair.count == 2 { values[String(pair[0])] = String(pair[1]) }
        }
        return values
    }

    @Test func isoSeedMatchesCloudLocaldsAndIsFoundByLabel() throws {
        let dir = try TemporaryDirectory("seedimg")
        let ours = dir.file("ours.iso")
        try SeedImageWriter.write(Self.seed, format: .iso, to: ours, timestamp: 1_700_000_000)
        let attributes = try FileManager.default.attributesOfItem(atPath: ours)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let probe = try Self.blkid(ours)
        #expect(probe["TYPE"] == "iso9660" && probe["LABEL"] == "cidata", "\(probe)")

        for file in Self.seed.files { try Data(file.contents).write(to: URL(fileURLWithPath: dir.file(file.name))) }
        let peer = dir.file("peer.iso")
        try ToolRunner.check("cloud-localds", ["-N", dir.file("network-config"), "-V", dir.file("vendor-data"),
                                              peer, dir.file("user-data"), dir.file("meta-data")])
        func names(_ image: String) throws -> [String] {
            try ToolRunner.check("isoinfo", ["-R", "-f", "-i", image]).stdoutText.split(separator: "\n").map(String.init).sorted()
        }
        #expect(try names(ours) == names(peer))
        for file in Self.seed.files {
            let a = try ToolRunner.check("isoinfo", ["-R", "-x", "/" + file.name, "-i", ours]).stdout
            let b = try ToolRunner.check("isoinfo", ["-R", "-x", "/" + file.name, "-i", peer]).stdout
            #expect(a == b && a == Data(file.contents), "\(file.name) differs from cloud-localds")
            let joliet = try ToolRunner.check("isoinfo", ["-J", "-x", "/" + file.name, "-i", ours]).stdout
            #expect(joliet == Data(file.contents))
        }
        #expect(try ToolRunner.check("isoinfo", ["-d", "-i", ours]).stdoutText.contains("Volume id: cidata"))
    }

    @Test func vfatSeedIsCleanAndFoundByLabel() throws {
        let dir = try TemporaryDirectory("seedimg")
        let path = dir.file("seed.img")
        try SeedImageWriter.write(Self.seed, format: .vfat, to: path)
        let probe = try Self.blkid(path)
        #expect(probe["TYPE"] == "vfat" && probe["LABEL"] == "CIDATA", "\(probe)")
        let fsck = try ToolRunner.run("fsck.vfat", ["-n", path])
        #expect(fsck.status == 0, "\(fsck.stdoutText)")
        for file in Self.seed.files {
            let text = try ToolRunner.check("mtype", ["-i", path, "::/" + file.name]).stdout
            #expect(text == Data(file.contents))
        }
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o600)
    }

    @Test func sameInputsAndTimestampGiveIdenticalImages() throws {
        let dir = try TemporaryDirectory("seedimg")
        for format in SeedImageFormat.allCases {
            try SeedImageWriter.write(Self.seed, format: format, to: dir.file("a"), timestamp: 1_600_000_000)
            try SeedImageWriter.write(Self.seed, format: format, to: dir.file("b"), timestamp: 1_600_000_000)
            #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("a"))) == Data(contentsOf: URL(fileURLWithPath: dir.file("b"))))
        }
    }

    @Test func invalidSeedsAreNotWrittenAndOldImagesSurvive() throws {
        let dir = try TemporaryDirectory("seedimg")
        let path = dir.file("seed.iso")
        try SeedImageWriter.write(Self.seed, format: .iso, to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let bad: [NoCloudSeed] = [
            NoCloudSeed(userData: Array("#cloud-config\nruncmd: nope\n".utf8), metaData: Self.seed.metaData),
            NoCloudSeed(userData: [0xFF, 0xFE, 0x00, 0x01], metaData: Self.seed.metaData),
            NoCloudSeed(userData: Self.seed.userData, metaData: Array("- not\n- a mapping\n".utf8)),
            NoCloudSeed(userData: Self.seed.userData, metaData: []),
            NoCloudSeed(userData: Self.seed.userData, metaData: Self.seed.metaData, networkConfig: Array("version: [2\n".utf8)),
        ]
        for seed in bad {
            for format in SeedImageFormat.allCases {
                #expect(throws: WispError.self) { try SeedImageWriter.write(seed, format: format, to: path) }
            }
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["seed.iso"])
    }

    @Test func scriptsAndMultipartUserDataArePacked() throws {
        let dir = try TemporaryDirectory("seedimg")
        let script = NoCloudSeed(userData: Array("#!/bin/sh\necho hi\n".utf8), metaData: Self.seed.metaData)
        try SeedImageWriter.write(script, format: .iso, to: dir.file("s.iso"))
        #expect(try ToolRunner.check("isoinfo", ["-R", "-x", "/user-data", "-i", dir.file("s.iso")]).stdoutText == "#!/bin/sh\necho hi\n")
    }
}
