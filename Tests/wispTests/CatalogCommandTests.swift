import Foundation
import Testing
import WispCore
import WispTestSupport

/// `wisp image pull NAME`, `wisp images` and `wisp images prune` end to end: the binary,
/// a user's images.d entry, and a local server publishing an `.xz` qcow2 with a SHA256SUMS.
@Suite struct CatalogCommandTests {
    @Test func pullListAndPruneACatalogImage() throws {
        let dir = try TemporaryDirectory("wisp-catalog-cli")
        let env = EverydayCommandTests.environment(dir)
        #expect(try ToolRunner.run("qemu-img", ["create", "-q", "-f", "qcow2", dir.file("tiny.qcow2"), "256M"]).status == 0)
        #expect(try ToolRunner.run("xz", ["-k", dir.file("tiny.qcow2")]).status == 0)
        let image = Array(try #require(FileManager.default.contents(atPath: dir.file("tiny.qcow2.xz"))))
        let sum = String(try ToolRunner.run("sha256sum", [dir.file("tiny.qcow2.xz")]).stdoutText.prefix(64))
        let server = try ScriptedServer { request in
            switch request.path {
            case "/tiny/1.0/tiny-1.0-x86_64.qcow2.xz": .respond(status: 200, headers: [], body: image)
            case "/tiny/1.0/SHA256SUMS": .respond(status: 200, headers: [], body: Array("\(sum)  tiny-1.0-x86_64.qcow2.xz\n".utf8))
            default: .respond(status: 404, headers: [], body: [])
            }
        }
        defer { server.stop() }
        try FileManager.default.createDirectory(atPath: dir.file("config/wisp/images.d"), withIntermediateDirectories: true)
        try """
            images:
              - name: tiny-1.0
                aliases: [tiny]
                distribution: tiny
                release: "1.0"
                arches: {x86_64: {arch: x86_64}}
                root: http://tiny-images.invalid/tiny/
                directory: "{release}/"
                file: tiny-{release}-{arch}.qcow2.xz
                checksum: {file: SHA256SUMS, algorithm: sha256}
            """.write(toFile: dir.file("config/wisp/images.d/tiny.yaml"), atomically: true, encoding: .utf8)
        // The entry's own root does not resolve: everything comes from the configured mirror.
        try "mirrors: {tiny: \"\(server.base)/tiny/\"}\n".write(toFile: dir.file("config/wisp/config.yaml"), atomically: true, encoding: .utf8)

        let catalog = try WispBinary.run(["images", "catalog", "--json"], environment: env)
        #expect(catalog.status == 0, "\(catalog.stderrText)")
        try JSONDialectTests.expectValid(catalog.stdoutText, "images-catalog", ["images", "catalog", "--json"])
        #expect(catalog.stdoutText.contains("\"tiny-1.0\"") && catalog.stdoutText.contains("\"debian-13\""))

        let pulled = try WispBinary.run(["image", "pull", "tiny", "--arch", "x86_64"], environment: env)
        #expect(pulled.status == 0, "\(pulled.stderrText)")
        let path: String = pulled.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(path.hasSuffix("/images/catalog/tiny-1.0-x86_64-tiny-1.0-x86_64-\(sum.prefix(12)).qcow2"), "\(path)")
        #expect(try ToolRunner.run("qemu-img", ["check", "-q", path]).status == 0)
        #expect(pulled.stderrText.contains("verified tiny-1.0 tiny-1.0-x86_64.qcow2.xz: sha256 from SHA256SUMS, checksum only"), "\(pulled.stderrText)")
        // Not a terminal: a line per tenth at most, not one per chunk.
        #expect(pulled.stderrText.split(separator: "\n").count <= 20, "\(pulled.stderrText)")

        let again = try WispBinary.run(["image", "pull", "tiny", "--json"], environment: env)
        #expect(again.status == 0, "\(again.stderrText)")
        try JSONDialectTests.expectValid(again.stdoutText, "catalog-pull", ["image", "pull", "--json"])
        #expect(again.stdoutText.contains("\"downloaded\" : false"))
        #expect(again.stderrText.contains("using cached tiny-1.0 tiny-1.0-x86_64.qcow2.xz (sha256:"), "\(again.stderrText)")
        #expect(!again.stderrText.contains("downloading"), "\(again.stderrText)")

        let listed = try WispBinary.run(["images", "--json"], environment: env)
        try JSONDialectTests.expectValid(listed.stdoutText, "images-list", ["images", "--json"])
        let table = try WispBinary.run(["images"], environment: env)
        #expect(table.stdoutText.contains("tiny-1.0") && table.stdoutText.contains("just now"), "\(table.stdoutText)")

        let pruned = try WispBinary.run(["images", "prune", "--all", "--json"], environment: env)
        #expect(pruned.status == 0, "\(pruned.stderrText)")
        try JSONDialectTests.expectValid(pruned.stdoutText, "images-prune", ["images", "prune", "--json"])
        #expect(!FileManager.default.fileExists(atPath: path))

        // A near miss is a sentence with a suggestion; a bad duration is a usage error.
        let typo = try WispBinary.run(["image", "pull", "debain-13"], environment: env)
        #expect(typo.status == 1 && typo.stderrText.contains("did you mean debian-13?"), "\(typo.stderrText)")
        let badAge = try WispBinary.run(["images", "prune", "--older-than", "soon"], environment: env)
        #expect(badAge.status == 64, "\(badAge.stderrText)")
    }

    /// A Ctrl-C in the middle of a download keeps the partial file in the staging area (not
    /// an image), and the next pull resumes it with a Range request, through the proxy
    /// named in http_proxy. `wisp run NAME` then uses the cached build.
    @Test func anInterruptedPullResumesThroughAProxy() throws {
        let dir = try TemporaryDirectory("wisp-catalog-resume")
        var env = EverydayCommandTests.environment(dir)
        var rng = SplitMix64(seed: 18)
        let image = (0..<(4 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        try Data(image).write(to: URL(fileURLWithPath: dir.file("big.img")))
        let sum = String(try ToolRunner.run("sha256sum", [dir.file("big.img")]).stdoutText.prefix(64))
        let served = LockedValue(0)
        let proxy = try ScriptedServer { request in
            if request.path.hasSuffix("/big/1/SHA256SUMS") {
                return .respond(status: 200, headers: [], body: Array("\(sum)  big-1-x86_64.img\n".utf8))
            }
            guard request.path.hasSuffix("/big/1/big-1-x86_64.img") else { return .respond(status: 404, headers: [], body: []) }
            if let range = request.headers["range"], let start = Int(range.dropFirst("bytes=".count).dropLast()) {
                return .respond(status: 206, headers: [("Content-Range", "bytes \(start)-\(image.count - 1)/\(image.count)")], body: Array(image[start...]))
            }
            let first = served.withLock { count -> Bool in defer { count += 1 }; return count == 0 }
            return first ? .trickle(status: 200, headers: [], body: image, after: 1 << 20, seconds: 30)
                         : .respond(status: 200, headers: [], body: image)
        }
        defer { proxy.stop() }
        env["http_proxy"] = proxy.base
        env["no_proxy"] = ""
        try FileManager.default.createDirectory(atPath: dir.file("config/wisp/images.d"), withIntermediateDirectories: true)
        try """
            images:
              - name: big-1
                aliases: [big]
                distribution: big
                release: "1"
                arches: {x86_64: {arch: x86_64}}
                root: http://images.example.invalid/big/
                directory: "{release}/"
                file: big-{release}-{arch}.img
                checksum: {file: SHA256SUMS, algorithm: sha256}
            """.write(toFile: dir.file("config/wisp/images.d/big.yaml"), atomically: true, encoding: .utf8)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: try WispBinary.path())
        process.arguments = ["image", "pull", "big"]
        process.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let staging = dir.file("cache/wisp/images/catalog/.staging")
        func partBytes() -> UInt64 {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? []
            return names.filter { $0.hasSuffix(".part") }.compactMap {
                (try? FileManager.default.attributesOfItem(atPath: "\(staging)/\($0)"))?[.size] as? UInt64
            }.reduce(0, +)
        }
        let deadline = Date().addingTimeInterval(30)
        while partBytes() < 1 << 20 && Date() < deadline { usleep(50_000) }
        #expect(partBytes() == 1 << 20, "the first megabyte arrived before the interrupt")
        process.interrupt()
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        let visible = (try? FileManager.default.contentsOfDirectory(atPath: dir.file("cache/wisp/images/catalog")))?.filter { !$0.hasPrefix(".") } ?? []
        #expect(visible.isEmpty, "nothing partial is visible as an image: \(visible)")
        #expect(try WispBinary.run(["images", "--json"], environment: env).stdoutText.filter { !$0.isWhitespace } == "[]")

        let resumed = try WispBinary.run(["image", "pull", "big"], environment: env)
        #expect(resumed.status == 0, "\(resumed.stderrText)")
        #expect(resumed.stderrText.contains("resuming big-1-x86_64.img at 1 MiB"), "\(resumed.stderrText)")
        let path: String = resumed.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(FileManager.default.contents(atPath: path) == Data(image))
        let requests = proxy.requests.withLock { $0 }
        #expect(requests.allSatisfy { $0.path.hasPrefix("http://images.example.invalid/big/") }, "every request went through the proxy")
        #expect(requests.contains { $0.headers["range"] == "bytes=\(1 << 20)-" })
        #expect(partBytes() == 0)

        // `wisp run NAME` resolves to the cached build with no network (stopped right after
        // resolution by a disk smaller than the image).
        let before = proxy.requests.withLock { $0.count }
        let run = try WispBinary.run(["run", "big", "--disk-size", "1M"], environment: env)
        #expect(run.status == 64, "\(run.stderrText)")
        #expect(run.stderrText.contains("using cached big-1 big-1-x86_64.img (sha256:\(sum.prefix(12))...)"), "\(run.stderrText)")
        #expect(proxy.requests.withLock { $0.count } == before)
    }
}
