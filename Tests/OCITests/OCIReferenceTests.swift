import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import OCI

@Suite struct OCIReferenceTests {
    @Test func transportsParse() throws {
        #expect(try OCIReference.parse("oci:/srv/layout") == .layout(directory: "/srv/layout", tag: nil))
        #expect(try OCIReference.parse("oci:layout:v1.2") == .layout(directory: "layout", tag: "v1.2"))
        #expect(try OCIReference.parse("oci-archive:img.tar:latest") == .layoutArchive(file: "img.tar", tag: "latest"))
        #expect(try OCIReference.parse("docker-archive:save.tar") == .dockerArchive(file: "save.tar", image: nil))
        #expect(try OCIReference.parse("docker-archive:save.tar:busybox:1.36") == .dockerArchive(file: "save.tar", image: "busybox:1.36"))
        #expect(OCIReference.hasTransport("oci-archive:x.tar") && !OCIReference.hasTransport("disk.qcow2") && !OCIReference.hasTransport("/a:b"))
    }

    @Test func registryNamesAreNormalisedLikeDocker() throws {
        func registry(_ text: String) throws -> RegistryReference {
            guard case .registry(let reference) = try OCIReference.parse(text) else { throw WispError(.failed, "not a registry reference") }
            return reference
        }
        let busybox = try registry("docker://busybox")
        #expect(busybox == RegistryReference(host: "docker.io", repository: "library/busybox", tag: "latest"))
        #expect(busybox.apiHost == "registry-1.docker.io")
        #expect(try registry("docker://fedora/fedora:40") == RegistryReference(host: "docker.io", repository: "fedora/fedora", tag: "40"))
        #expect(try registry("docker://quay.io/fedora/fedora-bootc:42") == RegistryReference(host: "quay.io", repository: "fedora/fedora-bootc", tag: "42"))
        #expect(try registry("docker://127.0.0.1:5000/a/b") == RegistryReference(host: "127.0.0.1:5000", repository: "a/b", tag: "latest"))
        #expect(try registry("docker://localhost/x:y").host == "localhost")
        let hex = String(repeating: "ab", count: 32)
        let pinned = try registry("docker://ghcr.io/o/r@sha256:\(hex)")
        #expect(pinned.digest?.hex == hex && pinned.tag == nil && pinned.manifestReference == "sha256:\(hex)")
        #expect(try registry("docker://index.docker.io/library/debian:12").description == "docker.io/library/debian:12")
    }

    @Test func badReferencesSayWhy() {
        let cases: [(String, String)] = [
            ("ftp:thing", "unknown transport ftp"),
            ("containers-storage:x", "unknown transport"),
            ("noscheme", "TRANSPORT:NAME"),
            ("docker:busybox", "docker://"),
            ("docker://UPPER/Case", "not a valid repository"),
            ("docker://busybox@sha256:1234", "is not a sha256"),
            ("docker://busybox:-bad", "not a valid tag"),
            ("oci:", "needs a path"),
            ("oci:dir:", "empty tag"),
        ]
        for (text, needle) in cases {
            do {
                _ = try OCIReference.parse(text)
                Issue.record("\(text) was accepted")
            } catch let error as WispError {
                #expect(error.kind == .invalidArgument, "\(text): \(error)")
                #expect(error.message.contains(needle), "\(text): \(error.message)")
            } catch {
                Issue.record("\(text): \(error)")
            }
        }
    }

    @Test func platformsMatchAndParse() throws {
        #expect(try OCIPlatform(parsing: "linux/arm64/v8") == OCIPlatform(os: "linux", architecture: "arm64", variant: "v8"))
        #expect(OCIPlatform(os: "linux", architecture: "arm64", variant: "v8").accepts(OCIPlatform(os: "linux", architecture: "arm64")))
        #expect(!OCIPlatform(os: "linux", architecture: "arm", variant: "v7").accepts(OCIPlatform(os: "linux", architecture: "arm", variant: "v6")))
        #expect(OCIPlatform(os: "linux", architecture: "amd64").accepts(OCIPlatform(os: "linux", architecture: "amd64", variant: "v3")))
        #expect(throws: WispError.self) { try OCIPlatform(parsing: "linux") }
        #expect(["amd64", "arm64"].contains(OCIPlatform.host.architecture))
    }

    /// A layout whose tag `multi` is an index nesting an index of amd64, arm64/v8 and an
    /// attestation manifest, beside the fixture's own `base`.
    @Test func indexesResolveToThePlatformAsked() async throws {
        let fixture = try SharedFixture.get()
        let work = try TemporaryDirectory("wisp-oci-index")
        let layout = work.file("layout")
        try ToolRunner.check("cp", ["-a", fixture.layout, layout])
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(layout)/index.json"))) as? [String: Any]
        guard let base = (index?["manifests"] as? [[String: Any]])?.first, let baseDigest = base["digest"] as? String else {
            throw WispError(.failed, "fixture index.json has no manifest")
        }
        func blob(_ digest: String) throws -> [String: Any] {
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(layout)/blobs/sha256/\(digest.dropFirst(7))"))
            return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        }
        func put(_ object: Any) throws -> (digest: String, size: Int) {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            let digest = SHA256Digester.digest(Array(data)).description
            try data.write(to: URL(fileURLWithPath: "\(layout)/blobs/sha256/\(digest.dropFirst(7))"))
            return (digest, data.count)
        }
        var manifest = try blob(baseDigest)
        let configDescriptor = manifest["config"] as? [String: Any] ?? [:]
        var config = try blob(configDescriptor["digest"] as? String ?? "")
        config["architecture"] = "arm64"
        config["variant"] = "v8"
        let armConfig = try put(config)
        manifest["config"] = ["mediaType": OCIMediaType.ociConfig, "digest": armConfig.digest, "size": armConfig.size]
        let armManifest = try put(manifest)
        let inner = try put([
            "schemaVersion": 2, "mediaType": OCIMediaType.ociIndex,
            "manifests": [
                ["mediaType": OCIMediaType.ociManifest, "digest": armManifest.digest, "size": armManifest.size,
                 "platform": ["os": "linux", "architecture": "arm64", "variant": "v8"]],
                ["mediaType": OCIMediaType.ociManifest, "digest": "sha256:" + String(repeating: "0", count: 64), "size": 100,
                 "platform": ["os": "unknown", "architecture": "unknown"],
                 "annotations": ["vnd.docker.reference.type": "attestation-manifest"]],
                ["mediaType": OCIMediaType.ociManifest, "digest": baseDigest, "size": base["size"] ?? 0,
                 "platform": ["os": "linux", "architecture": "amd64"]],
            ],
        ] as [String: Any])
        let top = try put(["schemaVersion": 2, "mediaType": OCIMediaType.ociIndex,
                           "manifests": [["mediaType": OCIMediaType.ociIndex, "digest": inner.digest, "size": inner.size]]] as [String: Any])
        let newIndex: [String: Any] = ["schemaVersion": 2, "manifests": [
            base,
            ["mediaType": OCIMediaType.ociIndex, "digest": top.digest, "size": top.size,
             "annotations": ["org.opencontainers.image.ref.name": "multi"]],
        ]]
        try JSONSerialization.data(withJSONObject: newIndex).write(to: URL(fileURLWithPath: "\(layout)/index.json"))

        let store = OCIBlobStore(root: work.file("store"))
        let arm = try await OCIPuller(store: store, options: OCIPullOptions(platform: try OCIPlatform(parsing: "linux/arm64"))).pull(.layout(directory: layout, tag: "multi"))
        #expect(arm.platform == OCIPlatform(os: "linux", architecture: "arm64", variant: "v8"))
        #expect(arm.configDigest.description == armConfig.digest && arm.manifestDigest?.description == armManifest.digest)
        let amd = try await OCIPuller(store: store, options: OCIPullOptions(platform: try OCIPlatform(parsing: "linux/amd64"))).pull(.layout(directory: layout, tag: "multi"))
        #expect(amd.manifestDigest?.description == baseDigest)
        #expect(amd.layers == arm.layers, "the same layers, stored once")

        await expectError(.notFound, ["linux/arm64/v8", "linux/amd64"], excluding: "unknown") {
            _ = try await OCIPuller(store: store, options: OCIPullOptions(platform: OCIPlatform(os: "linux", architecture: "s390x"))).pull(.layout(directory: layout, tag: "multi"))
        }
        await expectError(.invalidArgument, ["base", "multi"]) {
            _ = try await OCIPuller(store: store).pull(.layout(directory: layout, tag: nil))
        }
        await expectError(.notFound, ["no image tagged nope", "base, multi"]) {
            _ = try await OCIPuller(store: store).pull(.layout(directory: layout, tag: "nope"))
        }
        await expectError(.notFound, ["not an OCI image layout"]) {
            _ = try await OCIPuller(store: store).pull(.layout(directory: work.path, tag: nil))
        }
    }
}

extension OCIReferenceTests {
    /// A docker archive with two images must be told which one.
    @Test func dockerArchivesWithSeveralImagesNeedAName() async throws {
        let work = try TemporaryDirectory("wisp-oci-docker-multi")
        let tree = work.file("tree")
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        try #"[{"Config":"a.json","RepoTags":["one:v1"],"Layers":[]},{"Config":"b.json","RepoTags":["quay.io/two:v2"],"Layers":[]}]"#
            .write(toFile: "\(tree)/manifest.json", atomically: true, encoding: .utf8)
        try ToolRunner.check("tar", ["-cf", work.file("multi.tar"), "-C", tree, "manifest.json"])
        let store = OCIBlobStore(root: work.file("store"))
        await expectError(.invalidArgument, ["holds 2 images", "one:v1, quay.io/two:v2"]) {
            _ = try await OCIPuller(store: store).pull(try OCIReference.parse("docker-archive:\(work.file("multi.tar"))"))
        }
        await expectError(.notFound, ["no image three:v3", "one:v1, quay.io/two:v2"]) {
            _ = try await OCIPuller(store: store).pull(try OCIReference.parse("docker-archive:\(work.file("multi.tar")):three:v3"))
        }
        // A name that is there, normalised like docker: its config is missing from this archive.
        await expectError(.corrupt, ["names a.json, which is not in the archive"]) {
            _ = try await OCIPuller(store: store).pull(try OCIReference.parse("docker-archive:\(work.file("multi.tar")):docker.io/library/one:v1"))
        }
        await expectError(.notFound, ["no such file"]) {
            _ = try await OCIPuller(store: store).pull(try OCIReference.parse("oci-archive:\(work.file("absent.tar"))"))
        }
        await expectError(.corrupt, ["not a tar archive"]) {
            try Data(repeating: 7, count: 4096).write(to: URL(fileURLWithPath: work.file("junk.tar")))
            _ = try await OCIPuller(store: store).pull(try OCIReference.parse("oci-archive:\(work.file("junk.tar"))"))
        }
    }
}

/// Runs `body` and checks it throws a `WispError` of `kind` whose message holds every
/// one of `needles` (and not `excluding`).
func expectError(_ kind: WispError.Kind, _ needles: [String], excluding: String? = nil,
                 sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async {
    do {
        try await body()
        Issue.record("no error, expected \(kind)", sourceLocation: sourceLocation)
    } catch let error as WispError {
        #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
        for needle in needles {
            #expect(error.message.contains(needle), "\(error.message) lacks \(needle)", sourceLocation: sourceLocation)
        }
        if let excluding {
            #expect(!error.message.contains(excluding), "\(error.message)", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("\(error), expected a WispError", sourceLocation: sourceLocation)
    }
}
