import Foundation
import Testing
import WispCore
import WispTestSupport

/// `wisp image pull` through the real binary, on images made at test time by umoci and
/// skopeo: the digest it prints is skopeo's, the blobs land once in the cache, and a corrupt
/// archive is refused with nothing kept.
@Suite struct ImagePullCommandTests {
    @Test func pullsArchivesAndPrintsTheManifestDigest() throws {
        let dir = try TemporaryDirectory("wisp-pull")
        try FileManager.default.createDirectory(atPath: dir.file("root/etc"), withIntermediateDirectories: true)
        try Data("ID=wisptest\n".utf8).write(to: URL(fileURLWithPath: dir.file("root/etc/os-release")))
        try ToolRunner.check("umoci", ["init", "--layout", dir.file("layout")])
        try ToolRunner.check("umoci", ["new", "--image", dir.file("layout") + ":v1"])
        try ToolRunner.check("umoci", ["insert", "--image", dir.file("layout") + ":v1", dir.file("root/etc"), "/etc"])
        let archive = dir.file("image.tar")
        try ToolRunner.check("skopeo", ["copy", "--quiet", "oci:\(dir.file("layout")):v1", "oci-archive:\(archive):v1"])
        let expected = try ToolRunner.check("skopeo", ["inspect", "--format", "{{.Digest}}", "oci-archive:\(archive):v1"])
            .stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        let environment = ["XDG_CACHE_HOME": dir.file("cache"), "HOME": dir.path]

        let pulled = try WispBinary.run(["image", "pull", "oci-archive:\(archive):v1"], environment: environment)
        #expect(pulled.status == 0, "\(pulled.stderrText)")
        #expect(pulled.stdoutText == expected + "\n")
        #expect(pulled.stderrText.contains("1 layers"), "\(pulled.stderrText)")
        let blobs = try FileManager.default.contentsOfDirectory(atPath: dir.file("cache/wisp/oci/blobs/sha256"))
        #expect(blobs.contains(String(expected.dropFirst("sha256:".count))), "\(blobs)")
        // The layout itself pulls to the same digest, and nothing is stored twice.
        let again = try WispBinary.run(["image", "pull", "--json", "oci:\(dir.file("layout")):v1"], environment: environment)
        #expect(again.status == 0, "\(again.stderrText)")
        let json = try JSONSerialization.jsonObject(with: Data(again.stdoutText.utf8)) as? [String: Any]
        #expect(json?["digest"] as? String == expected)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("cache/wisp/oci/blobs/sha256")).sorted() == blobs.sorted())

        // Usage errors and a missing tag are one sentence each.
        let unknown = try WispBinary.run(["image", "pull", "ftp:x"], environment: environment)
        #expect(unknown.status != 0 && unknown.stderrText.hasPrefix("wisp: "), "\(unknown.stderrText)")
        let missing = try WispBinary.run(["image", "pull", "oci:\(dir.file("layout")):nope"], environment: environment)
        #expect(missing.status == 1 && missing.stderrText.contains("v1"), "\(missing.stderrText)")

        // A truncated archive is refused, and leaves no half-written blob.
        let data = try Data(contentsOf: URL(fileURLWithPath: archive))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: dir.file("cut.tar")))
        let cut = try WispBinary.run(["image", "pull", "oci-archive:\(dir.file("cut.tar")):v1"],
                                     environment: ["XDG_CACHE_HOME": dir.file("cache2"), "HOME": dir.path])
        #expect(cut.status == 1, "\(cut.stderrText)")
        let leftovers = (try? FileManager.default.subpathsOfDirectory(atPath: dir.file("cache2"))) ?? []
        #expect(!leftovers.contains { $0.contains(".tmp") || $0.hasPrefix(".") }, "\(leftovers)")
    }
}
