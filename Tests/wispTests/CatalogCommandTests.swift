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
                root: \(server.base)/tiny/
                directory: "{release}/"
                file: tiny-{release}-{arch}.qcow2.xz
                checksum: {file: SHA256SUMS, algorithm: sha256}
            """.write(toFile: dir.file("config/wisp/images.d/tiny.yaml"), atomically: true, encoding: .utf8)

        let catalog = try WispBinary.run(["images", "catalog", "--json"], environment: env)
        #expect(catalog.status == 0, "\(catalog.stderrText)")
        try JSONDialectTests.expectValid(catalog.stdoutText, "images-catalog", ["images", "catalog", "--json"])
        #expect(catalog.stdoutText.contains("\"tiny-1.0\"") && catalog.stdoutText.contains("\"debian-13\""))

        let pulled = try WispBinary.run(["image", "pull", "tiny", "--arch", "x86_64"], environment: env)
        #expect(pulled.status == 0, "\(pulled.stderrText)")
        let path: String = pulled.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(path.hasSuffix("/images/catalog/tiny-1.0-x86_64-tiny-1.0-x86_64.qcow2"), "\(path)")
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
}
