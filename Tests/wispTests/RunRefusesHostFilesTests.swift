import Foundation
import Testing
import MetadataService
import WispCore
import WispTestSupport

/// The attacks of the security issue against `wisp run` and `wisp fs`, with the real binary:
/// an image whose backing or data file is a host file is refused before anything boots,
/// whether it was downloaded (an image from outside may refer to no other file) or is local
/// (references may not leave its directory); nothing of the host file is shown, and no
/// instance is left behind.
@Suite struct RunRefusesHostFilesTests {
    struct Box {
        let dir: TemporaryDirectory
        let hostFile: String
        var environment: [String: String] {
            ["XDG_DATA_HOME": dir.file("data"), "XDG_CACHE_HOME": dir.file("cache"), "HOME": dir.path]
        }
        func wisp(_ arguments: [String]) throws -> ToolResult {
            try WispBinary.run(arguments, environment: environment)
        }
        var instances: [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir.file("data") + "/wisp/instances")) ?? []).filter { !$0.hasPrefix(".") }
        }
    }

    static let marker = "WISP-HOST-FILE-MARKER"

    static func box() throws -> Box {
        let dir = try TemporaryDirectory("wisp-hostile-run")
        try FileManager.default.createDirectory(atPath: dir.file("host"), withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: dir.file("images"), withIntermediateDirectories: false)
        let hostFile = dir.file("host/secret.raw")
        try Data(String(repeating: marker + "\n", count: 64 << 10 / 22).utf8.prefix(64 << 10)).write(to: URL(fileURLWithPath: hostFile))
        try ToolRunner.check("truncate", ["-s", "16M", hostFile])
        return Box(dir: dir, hostFile: hostFile)
    }

    @Test func aDownloadedImageThatNamesAHostFileNeverBoots() throws {
        let box = try Self.box()
        let evil = box.dir.file("images/evil.qcow2")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", "-b", box.hostFile, "-F", "raw", evil])
        let body = [UInt8](try Data(contentsOf: URL(fileURLWithPath: evil)))
        let server = try HTTPServer { request in
            request.path == "/evil.qcow2" ? HTTPResponse(status: 200, reason: "OK", contentType: "application/octet-stream", body: body) : .notFound()
        }
        defer { server.stop() }
        let result = try box.wisp(["run", "--accel", "tcg", "--timeout", "30", "http://127.0.0.1:\(server.port)/evil.qcow2"])
        #expect(result.status == 1)
        #expect(result.stderrText.contains("qcow2 backing file \"\(box.hostFile)\" refers to another file"), "\(result.stderrText)")
        #expect(result.stderrText.contains("must be self-contained"), "\(result.stderrText)")
        #expect(!result.stdoutText.contains(Self.marker) && !result.stderrText.contains(Self.marker))
        #expect(box.instances.isEmpty, "\(box.instances)")
    }

    @Test func aLocalImageMayNotReachOutsideItsDirectory() throws {
        let box = try Self.box()
        let evil = box.dir.file("images/evil.qcow2")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", "-b", box.hostFile, "-F", "raw", evil])
        let run = try box.wisp(["run", "--accel", "tcg", "--timeout", "30", evil])
        #expect(run.status == 1)
        #expect(run.stderrText.contains(box.hostFile) && run.stderrText.contains("--allow-backing"), "\(run.stderrText)")
        #expect(box.instances.isEmpty, "\(box.instances)")
        // wisp fs reads the same chain under the same rule.
        let cat = try box.wisp(["fs", "cat", evil, "/etc/os-release"])
        #expect(cat.status == 1)
        #expect(!cat.stdoutText.contains(Self.marker))
        #expect(cat.stderrText.contains(box.hostFile), "\(cat.stderrText)")
        // A relative name climbing out is the same attack.
        let climbing = box.dir.file("images/climb.qcow2")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "../host/secret.raw", "-F", "raw", climbing],
                             currentDirectory: box.dir.file("images"))
        let climb = try box.wisp(["run", "--accel", "tcg", "--timeout", "30", climbing])
        #expect(climb.status == 1 && climb.stderrText.contains("secret.raw"), "\(climb.stderrText)")
        // json: names are refused whatever is allowed.
        let pseudo = box.dir.file("images/pseudo.qcow2")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", "-u", "-b", "json:{\"file.filename\":\"\(box.hostFile)\"}", "-F", "raw", pseudo, "16M"])
        let json = try box.wisp(["run", "--accel", "tcg", "--timeout", "30", "--allow-backing", box.dir.file("host"), pseudo])
        #expect(json.status == 1 && json.stderrText.contains("json:"), "\(json.stderrText)")
        #expect(box.instances.isEmpty, "\(box.instances)")
    }
}
