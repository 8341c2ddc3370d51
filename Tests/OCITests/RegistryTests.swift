import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import OCI

/// Pulls from a real registry (docker-registry with token auth, pushed to by skopeo).
@Suite(.serialized) struct RegistryTests {
    @Test func pullsByTagAndByDigestWithAnAnonymousToken() async throws {
        let fixture = try SharedFixture.get()
        let registry = try TestRegistry()
        try registry.push("oci:\(fixture.layout):\(OCIFixture.tag)", as: "wisp/fixture:v1")
        let work = try TemporaryDirectory("wisp-oci-pull")
        let (_, _, expected) = try await pullAndRecord("oci:\(fixture.layout):\(OCIFixture.tag)", store: OCIBlobStore(root: work.file("local")))

        let before = registry.tokenRequests.withLock { $0 }
        let seen = LockedValue<[OCIPullProgress]>([])
        var options = OCIPullOptions(authFiles: [])
        options.progress = { progress in seen.withLock { $0.append(progress) } }
        let (image, _, records) = try await pullAndRecord("docker://\(registry.host)/wisp/fixture:v1", store: OCIBlobStore(root: work.file("a")), options: options)
        #expect(differences(records, expected).isEmpty)
        #expect(registry.tokenRequests.withLock { $0 } - before == 1, "one token for the manifest, the config and six layers")
        let last = try #require(seen.withLock { $0.last })
        #expect(last.bytesDone == last.bytesTotal && last.bytesTotal == image.layers.reduce(0) { $0 + UInt64($1.descriptor.size) })
        #expect(last.layersDone == 6 && last.layersTotal == 6)

        let digest = try #require(image.manifestDigest)
        let (pinned, _, pinnedRecords) = try await pullAndRecord("docker://\(registry.host)/wisp/fixture@\(digest)", store: OCIBlobStore(root: work.file("b")), options: OCIPullOptions(authFiles: []))
        #expect(pinned.manifestDigest == digest && pinned.configDigest == image.configDigest)
        #expect(differences(pinnedRecords, expected).isEmpty)

        await expectError(.notFound, ["no such image or tag"]) {
            _ = try await OCIPuller(store: OCIBlobStore(root: work.file("c")), options: OCIPullOptions(authFiles: []))
                .pull(try OCIReference.parse("docker://\(registry.host)/wisp/fixture:missing"))
        }
        // An absent digest is the registry's 404, never another image.
        await expectError(.notFound, []) {
            _ = try await OCIPuller(store: OCIBlobStore(root: work.file("c")), options: OCIPullOptions(authFiles: []))
                .pull(try OCIReference.parse("docker://\(registry.host)/wisp/fixture@sha256:\(String(repeating: "0", count: 64))"))
        }
    }

    @Test func privateRepositoriesNeedTheAuthFile() async throws {
        let fixture = try SharedFixture.get()
        let registry = try TestRegistry()
        try registry.push("oci:\(fixture.layout):\(OCIFixture.tag)", as: "private/fixture:v1")
        let work = try TemporaryDirectory("wisp-oci-private")
        let reference = try OCIReference.parse("docker://\(registry.host)/private/fixture:v1")
        await expectError(.permissionDenied, ["access denied", "no credentials for \(registry.host)"]) {
            _ = try await OCIPuller(store: OCIBlobStore(root: work.file("a")), options: OCIPullOptions(authFiles: [work.file("none.json")])).pull(reference)
        }
        let authFile = work.file("auth.json")
        let auth = Data("\(TestRegistry.user):\(TestRegistry.password)".utf8).base64EncodedString()
        try #"{"auths": {"\#(registry.host)": {"auth": "\#(auth)"}}}"#.write(toFile: authFile, atomically: true, encoding: .utf8)
        let image = try await OCIPuller(store: OCIBlobStore(root: work.file("b")), options: OCIPullOptions(authFiles: [authFile])).pull(reference)
        #expect(image.layers.count == 6)
        // $REGISTRY_AUTH_FILE is the first place looked.
        setenv("REGISTRY_AUTH_FILE", authFile, 1)
        defer { unsetenv("REGISTRY_AUTH_FILE") }
        #expect(RegistryCredentials.defaultAuthFiles.first == authFile)
        let wrong = work.file("wrong.json")
        try #"{"auths": {"http://\#(registry.host)/v1/": {"auth": "\#(Data("wisp:nope".utf8).base64EncodedString())"}}}"#.write(toFile: wrong, atomically: true, encoding: .utf8)
        await expectError(.permissionDenied, ["token service"]) {
            _ = try await OCIPuller(store: OCIBlobStore(root: work.file("c")), options: OCIPullOptions(authFiles: [wrong])).pull(reference)
        }
    }
}
