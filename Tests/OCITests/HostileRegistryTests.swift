import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import OCI

/// Registries that misbehave, played by a scripted server: each ends in one sentence and
/// leaves nothing half-written in the cache.
@Suite struct HostileRegistryTests {
    static let manifestType = [("Content-Type", OCIMediaType.ociManifest)]

    static func pull(_ server: ScriptedServer, _ path: String = "wisp/x:latest", store: OCIBlobStore, stall: Int = 60) async throws -> OCIPulledImage {
        var options = OCIPullOptions(authFiles: [])
        options.stallTimeoutSeconds = stall
        return try await OCIPuller(store: store, options: options).pull(try OCIReference.parse("docker://127.0.0.1:\(server.port)/\(path)"))
    }

    @Test func garbageOversizeLoopsAndStallsFail() async throws {
        let work = try TemporaryDirectory("wisp-oci-hostile-registry")
        let store = OCIBlobStore(root: work.file("store"))
        let huge = [UInt8](repeating: 0x20, count: 5 << 20)
        let server = try ScriptedServer { request in
            switch request.path {
            case "/v2/": return .respond(status: 200, headers: [], body: Array("{}".utf8))
            case "/v2/wisp/garbage/manifests/latest": return .respond(status: 200, headers: Self.manifestType, body: Array("<html>not a manifest</html>".utf8))
            case "/v2/wisp/huge/manifests/latest": return .respond(status: 200, headers: Self.manifestType, body: huge)
            case "/v2/wisp/loop/manifests/latest": return .respond(status: 302, headers: [("Location", "/v2/wisp/loop/manifests/latest")], body: [])
            case "/v2/wisp/stall/manifests/latest": return .stall(seconds: 120)
            case "/v2/wisp/plain/manifests/latest": return .respond(status: 302, headers: [("Location", "http://wisp-test.invalid/m")], body: [])
            case "/v2/wisp/teapot/manifests/latest": return .respond(status: 418, headers: [], body: Array(#"{"errors":[{"code":"TEAPOT","message":"short and stout"}]}"#.utf8))
            case "/v2/wisp/artifact/manifests/latest":
                return .respond(status: 200, headers: [("Content-Type", "application/vnd.cncf.helm.config.v1+json")], body: Array(#"{"mediaType":"application/vnd.cncf.helm.config.v1+json"}"#.utf8))
            default: return .respond(status: 404, headers: [], body: [])
            }
        }
        await expectError(.corrupt, ["not valid"]) { _ = try await Self.pull(server, "wisp/garbage", store: store) }
        await expectError(.corrupt, ["4194304-byte limit"]) { _ = try await Self.pull(server, "wisp/huge", store: store) }
        await expectError(.failed, ["redirected more than 10 times"]) { _ = try await Self.pull(server, "wisp/loop", store: store) }
        await expectError(.permissionDenied, ["plain HTTP"]) { _ = try await Self.pull(server, "wisp/plain", store: store) }
        await expectError(.failed, ["HTTP 418", "TEAPOT: short and stout"]) { _ = try await Self.pull(server, "wisp/teapot", store: store) }
        await expectError(.unsupported, ["helm"]) { _ = try await Self.pull(server, "wisp/artifact", store: store) }
        // The server holds the connection for 120 s and then closes it without an answer
        // (which would be `.connectionClosed`), so `.timedOut` alone shows the 2 s stall limit
        // cut it. The wall-clock bound is loose on purpose: under CI load, with TCG boots
        // running beside this test, the task itself can wait many seconds to be scheduled.
        let before = Date()
        await expectError(.timedOut, []) { _ = try await Self.pull(server, "wisp/stall", store: store, stall: 2) }
        #expect(Date().timeIntervalSince(before) < 100, "the stall was cut by the 2 s limit, not by the server giving up")
        #expect(server.requests.withLock { $0 }.filter { $0.path.hasSuffix("loop/manifests/latest") }.count == 11)
        #expect(BlobStoreTests.storedFiles(store).isEmpty)
    }

    /// The fixture served by a scripted registry that wants a bearer token, redirects blobs
    /// to storage on another port (which must never see the token), cuts the first layer
    /// transfer half-way (resumed with Range), and for a pinned digest sends another manifest.
    @Test func tokensRedirectsAndResumes() async throws {
        let fixture = try SharedFixture.get()
        let layout = fixture.layout
        let index = try JSONDecoder().decode(OCIIndex.self, from: Data(contentsOf: URL(fileURLWithPath: "\(layout)/index.json")))
        let manifestDigest = try #require(index.manifests.first?.digest)
        @Sendable func blob(_ hex: Substring) -> [UInt8] {
            (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(layout)/blobs/sha256/\(hex)")))) ?? []
        }
        let manifestBytes = blob(Substring(manifestDigest.hex))
        let manifest = try JSONDecoder().decode(OCIManifest.self, from: Data(manifestBytes))
        let cutLayer = manifest.layers[0].digest.hex
        let cuts = LockedValue(0)
        let storage = try ScriptedServer { request in
            let hex = request.path.split(separator: "?").first?.split(separator: "/").last ?? ""
            #expect(request.path.hasSuffix("?X-Signature=secret"), "the signed URL is followed as given")
            let bytes = blob(hex)
            guard !bytes.isEmpty else { return .respond(status: 404, headers: [], body: []) }
            if let range = request.headers["range"], range.hasPrefix("bytes="), let start = Int(range.dropFirst(6).dropLast()) {
                return .respond(status: 206, headers: [("Content-Range", "bytes \(start)-\(bytes.count - 1)/\(bytes.count)")], body: Array(bytes[start...]))
            }
            if hex == cutLayer, cuts.withLock({ $0 += 1; return $0 }) == 1 {
                return .cut(status: 200, headers: [], body: bytes, after: bytes.count / 2)
            }
            return .respond(status: 200, headers: [], body: bytes)
        }
        let tokens = LockedValue(0)
        let registryPort = LockedValue<UInt16>(0)
        let registry = try ScriptedServer { request in
            let port = registryPort.withLock { $0 }
            if request.path.hasPrefix("/token") {
                tokens.withLock { $0 += 1 }
                #expect(request.path.contains("scope=repository:wisp/x:pull") || request.path.contains("scope=repository%3Awisp%2Fx%3Apull"))
                return .respond(status: 200, headers: [], body: Array(#"{"token":"T0K3N","expires_in":300}"#.utf8))
            }
            guard request.headers["authorization"] == "Bearer T0K3N" else {
                return .respond(status: 401, headers: [("WWW-Authenticate", #"Bearer realm="http://127.0.0.1:\#(port)/token",service="scripted",scope="repository:wisp/x:pull""#)], body: [])
            }
            switch request.path {
            case "/v2/": return .respond(status: 200, headers: [], body: [])
            case "/v2/wisp/x/manifests/latest", "/v2/wisp/x/manifests/\(manifestDigest)":
                return .respond(status: 200, headers: Self.manifestType, body: manifestBytes)
            case "/v2/wisp/x/manifests/sha256:\(String(repeating: "a", count: 64))":
                return .respond(status: 200, headers: Self.manifestType, body: manifestBytes)
            default:
                if request.path.hasPrefix("/v2/wisp/x/blobs/sha256:") {
                    let hex = request.path.dropFirst("/v2/wisp/x/blobs/sha256:".count)
                    return .respond(status: 307, headers: [("Location", "\(storage.base)/storage/\(hex)?X-Signature=secret")], body: [])
                }
                return .respond(status: 404, headers: [], body: [])
            }
        }
        registryPort.withLock { $0 = registry.port }
        let work = try TemporaryDirectory("wisp-oci-scripted")
        let (_, _, expected) = try await pullAndRecord("oci:\(layout):\(OCIFixture.tag)", store: OCIBlobStore(root: work.file("local")))
        let store = OCIBlobStore(root: work.file("store"))
        let image = try await Self.pull(registry, store: store)
        let merged = try MergedRootFS.build(layers: image.layers)
        var sink = RecordingSink()
        try merged.emit(into: &sink)
        #expect(differences(sink.finished(), expected).isEmpty)
        #expect(image.manifestDigest == manifestDigest)
        #expect(tokens.withLock { $0 } == 1, "the token is reused")
        let storageRequests = storage.requests.withLock { $0 }
        #expect(storageRequests.allSatisfy { $0.headers["authorization"] == nil }, "credentials went to another host")
        #expect(storageRequests.contains { $0.headers["range"] != nil && $0.path.contains(cutLayer) }, "the cut transfer was resumed with Range")
        #expect(registry.requests.withLock { $0 }.filter { $0.path.contains("/blobs/") }.allSatisfy { $0.headers["authorization"] == "Bearer T0K3N" })

        // Pinned by a digest the served manifest does not have.
        let other = OCIBlobStore(root: work.file("other"))
        await expectError(.digestMismatch, ["expected sha256:aaaa", "got \(manifestDigest)"]) {
            _ = try await Self.pull(registry, "wisp/x@sha256:\(String(repeating: "a", count: 64))", store: other)
        }
        #expect(BlobStoreTests.storedFiles(other).isEmpty)
    }

    /// A registry that asks for Basic credentials (taken from the auth file) and serves
    /// blobs slowly: layers arrive two at a time, never more.
    @Test func basicCredentialsAndTwoDownloadsAtATime() async throws {
        let layout = try SharedFixture.get().layout
        let index = try JSONDecoder().decode(OCIIndex.self, from: Data(contentsOf: URL(fileURLWithPath: "\(layout)/index.json")))
        let manifestDigest = try #require(index.manifests.first?.digest)
        let expected = "Basic " + Data("me:pa55".utf8).base64EncodedString()
        let inFlight = LockedValue((now: 0, most: 0))
        let registry = try ScriptedServer { request in
            guard request.headers["authorization"] == expected else {
                return .respond(status: 401, headers: [("WWW-Authenticate", #"Basic realm="scripted""#)], body: [])
            }
            let digest = request.path.split(separator: "/").last.map(String.init) ?? ""
            let hex = digest.hasPrefix("sha256:") ? String(digest.dropFirst(7)) : manifestDigest.hex
            guard let bytes = try? [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(layout)/blobs/sha256/\(hex)"))) else {
                return .respond(status: request.path == "/v2/" ? 200 : 404, headers: [], body: [])
            }
            if request.path.contains("/blobs/") {
                inFlight.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
                usleep(300_000)
                inFlight.withLock { $0.now -= 1 }
            }
            return .respond(status: 200, headers: request.path.contains("/manifests/") ? Self.manifestType : [], body: bytes)
        }
        let work = try TemporaryDirectory("wisp-oci-basic")
        let authFile = work.file("config.json")
        try #"{"auths": {"127.0.0.1:\#(registry.port)": {"auth": "\#(Data("me:pa55".utf8).base64EncodedString())"}}}"#.write(toFile: authFile, atomically: true, encoding: .utf8)
        let image = try await OCIPuller(store: OCIBlobStore(root: work.file("store")), options: OCIPullOptions(authFiles: [authFile]))
            .pull(try OCIReference.parse("docker://127.0.0.1:\(registry.port)/wisp/x:latest"))
        #expect(image.layers.count == 6)
        #expect(inFlight.withLock { $0.most } == 2)
        await expectError(.permissionDenied, ["user name and password"]) {
            _ = try await OCIPuller(store: OCIBlobStore(root: work.file("other")), options: OCIPullOptions(authFiles: []))
                .pull(try OCIReference.parse("docker://127.0.0.1:\(registry.port)/wisp/x:latest"))
        }
    }

    @Test func authChallengesParse() {
        let bearer = RegistryAuthChallenge(#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull,push""#)
        #expect(bearer?.scheme == "bearer")
        #expect(bearer?.parameters == ["realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/debian:pull,push"])
        #expect(RegistryAuthChallenge(#"Basic realm="Registry \"x\"""#)?.parameters["realm"] == #"Registry "x""#)
        #expect(RegistryAuthChallenge("") == nil)
        #expect(RegistryClient.isLoopback("127.0.0.1:5000") && RegistryClient.isLoopback("localhost") && RegistryClient.isLoopback("[::1]:5000"))
        #expect(!RegistryClient.isLoopback("quay.io") && !RegistryClient.isLoopback("10.0.0.1:5000") && !RegistryClient.isLoopback("127.0.0.1.example.com"))
        #expect(RegistryCredentials.normalise("https://index.docker.io/v1/") == "docker.io")
    }
}
