import Foundation
import Testing
import WispCore
import WispTestSupport

/// The built `wisp` against images whose backing or data file is a host file: nothing of
/// that file reaches the output unless the user allows its directory; and `image info`
/// shows the chain it resolved, with qemu-img's JSON keys and values.
@Suite struct ImageBackingCommandTests {
    static let marker = Array("WISP-HOST-SECRET-MARKER".utf8)

    static func wisp() throws -> String {
        let path = TestImage.repositoryRoot + "/.build/debug/wisp"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw WispError.notFound("\(path) is missing: run `swift build` before the tests")
        }
        return path
    }

    struct Fixture {
        let root: TemporaryDirectory
        let host: String
        let images: String
        let hostFile: String
    }

    static func fixture() throws -> Fixture {
        let root = try TemporaryDirectory("chaincli")
        let host = root.file("host"), images = root.file("images")
        for dir in [host, images] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false) }
        var bytes: [UInt8] = []
        while bytes.count < 1 << 20 { bytes += marker + Array(" padding ".utf8) }
        let hostFile = host + "/secret.raw"
        try Data(bytes.prefix(1 << 20)).write(to: URL(fileURLWithPath: hostFile))
        return Fixture(root: root, host: host, images: images, hostFile: hostFile)
    }

    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func containsMarker(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= marker.count else { return false }
        for i in 0...(bytes.count - marker.count) where bytes[i] == marker[0] {
            if Array(bytes[i..<(i + marker.count)]) == marker { return true }
        }
        return false
    }

    @Test func convertNeverCopiesAHostBackingFile() throws {
        let f = try Self.fixture()
        let wisp = try Self.wisp()
        let evil = f.images + "/evil.qcow2"
        try ToolRunner.check("qemu-img", ["create", "-f", "qcow2", "-b", f.hostFile, "-F", "raw", evil])
        let evilData = f.images + "/evil-data.qcow2"
        let stolen = f.host + "/stolen.raw"
        try ToolRunner.check("qemu-img", ["create", "-f", "qcow2", "-o", "data_file=\(stolen),data_file_raw=on", evilData, "1M"])
        try FileManager.default.removeItem(atPath: stolen)
        try FileManager.default.copyItem(atPath: f.hostFile, toPath: stolen)

        for (image, field) in [(evil, "qcow2 backing file"), (evilData, "qcow2 external data file")] {
            // qemu-img copies the host file: the attack is real.
            let theirs = f.root.file("qemu-img.raw")
            try ToolRunner.check("qemu-img", ["convert", "-O", "raw", image, theirs])
            #expect(Self.containsMarker(try Self.bytes(theirs)))

            for format in ["raw", "qcow2"] {
                let out = f.root.file("out.\(format)")
                let r = try ToolRunner.run(wisp, ["image", "convert", "-O", format, image, out])
                #expect(r.status == 1, "\(r.stderrText)")
                #expect(r.stderrText.contains(field) && r.stderrText.contains("outside"), "\(r.stderrText)")
                #expect(!FileManager.default.fileExists(atPath: out))
            }
            for args in [["image", "info", image], ["image", "check", image], ["inspect", image],
                         ["kernel", "extract", "--list", image]] {
                let r = try ToolRunner.run(wisp, args)
                #expect(r.status == 1, "\(args): \(r.stdoutText)\(r.stderrText)")
                #expect(r.stderrText.contains(field), "\(args): \(r.stderrText)")
                #expect(!Self.containsMarker(Array(r.stdout)))
            }

            // Allowed on purpose, wisp reads what qemu-img reads.
            let allowed = f.root.file("allowed.raw")
            try ToolRunner.check(wisp, ["image", "convert", "-O", "raw", "--allow-backing", f.host, image, allowed])
            try ToolRunner.check("qemu-img", ["compare", "-f", "raw", "-F", "raw", allowed, theirs])
            for file in [theirs, allowed] { try FileManager.default.removeItem(atPath: file) }
        }

        // Said to be raw, the qcow2-looking file is copied as the bytes it holds.
        let asRaw = f.root.file("as-raw.raw")
        try ToolRunner.check(wisp, ["image", "convert", "-f", "raw", "-O", "raw", evil, asRaw])
        #expect(try Self.bytes(asRaw) == (try Self.bytes(evil)))
        #expect(!Self.containsMarker(try Self.bytes(asRaw)))
    }

    @Test func imageInfoShowsTheResolvedChain() throws {
        let f = try Self.fixture()
        let wisp = try Self.wisp()
        let base = f.images + "/base.qcow2", overlay = f.images + "/overlay.qcow2"
        try ToolRunner.check("qemu-img", ["create", "-f", "qcow2", base, "16M"])
        try ToolRunner.check("qemu-img", ["create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", overlay, "32M"])

        let text = try ToolRunner.check(wisp, ["image", "info", "--no-partitions", overlay]).stdoutText
        #expect(text.contains("backing file: base.qcow2 (actual path: \(base))"), "\(text)")
        #expect(text.contains("resolved chain"), "\(text)")
        #expect(text.contains("    \(overlay)  qcow2  32 MiB (33554432 bytes)"), "\(text)")
        #expect(text.contains("    \(base)  qcow2  16 MiB (16777216 bytes)"), "\(text)")

        // qemu-img is the judge of the keys both report.
        let ours = try #require(try JSONSerialization.jsonObject(
            with: ToolRunner.check(wisp, ["image", "info", "--json", "--no-partitions", overlay]).stdout) as? [String: Any])
        let theirs = try #require(try JSONSerialization.jsonObject(
            with: ToolRunner.check("qemu-img", ["info", "--output=json", overlay]).stdout) as? [String: Any])
        for key in ["filename", "format", "virtual-size", "cluster-size", "backing-filename",
                    "full-backing-filename", "backing-filename-format", "dirty-flag"] {
            #expect(theirs[key] != nil, "qemu-img reports no \(key)")
            #expect("\(ours[key] ?? "missing")" == "\(theirs[key] ?? "missing")", "\(key)")
        }
        let chain = try #require(ours["backing-chain"] as? [[String: Any]])
        #expect(chain.count == 1)
        #expect(chain.first?["filename"] as? String == base)
        #expect(chain.first?["real-path"] as? String == base)
        #expect(chain.first?["virtual-size"] as? Int == 16 << 20)
        #expect(ours["real-path"] as? String == overlay)

        // Moved out of the overlay's directory, the base needs --allow-backing.
        let elsewhere = f.host + "/base.qcow2"
        try ToolRunner.check("qemu-img", ["convert", "-O", "qcow2", base, elsewhere])
        try ToolRunner.check("qemu-img", ["rebase", "-u", "-b", elsewhere, "-F", "qcow2", overlay])
        let refused = try ToolRunner.run(wisp, ["image", "info", "--no-partitions", overlay])
        #expect(refused.status == 1)
        #expect(refused.stderrText.contains("qcow2 backing file \"\(elsewhere)\""), "\(refused.stderrText)")
        let allowed = try ToolRunner.check(wisp, ["image", "info", "--no-partitions", "--allow-backing", f.host, overlay]).stdoutText
        #expect(allowed.contains("    \(elsewhere)  qcow2  16 MiB"), "\(allowed)")
    }

    @Test func everyChainReadingCommandTakesAllowBacking() throws {
        let wisp = try Self.wisp()
        for command in [["image", "info"], ["image", "convert"], ["image", "check"], ["image", "create"],
                        ["image", "resize"], ["inspect"], ["kernel", "extract"]] {
            let help = try ToolRunner.check(wisp, command + ["--help"]).stdoutText
            #expect(help.contains("--allow-backing <DIR>"), "\(command)")
        }
        // A directory that does not exist is an error, not silently ignored.
        let f = try Self.fixture()
        let image = f.images + "/plain.qcow2"
        try ToolRunner.check("qemu-img", ["create", "-f", "qcow2", image, "1M"])
        let r = try ToolRunner.run(wisp, ["image", "info", "--allow-backing", f.root.file("nope"), image])
        #expect(r.status == 1)
        #expect(r.stderrText.contains("does not exist"))
    }
}
