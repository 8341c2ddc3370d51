import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import OCI

/// A registry that misbehaves during a push, played by a scripted server: each ends in a
/// typed error before any byte of the disk goes where it should not.
@Suite struct HostilePushTests {
    static func image(_ work: TemporaryDirectory) throws -> ContainerDiskImage {
        try Data(repeating: 0x5a, count: 3000).write(to: URL(fileURLWithPath: work.file("disk.qcow2")))
        return try ContainerDiskImage(disk: work.file("disk.qcow2"), diskName: "d", layerPath: work.file("layer.tar"), architecture: "amd64")
    }

    @Test func uploadsStayOnTheRegistryAndAnswersAreChecked() async throws {
        let work = try TemporaryDirectory("wisp-oci-hostile-push")
        let image = try Self.image(work)
        let server = try ScriptedServer { request in
            switch (request.method, request.path) {
            case ("GET", "/v2/"): return .respond(status: 200, headers: [], body: Array("{}".utf8))
            case ("HEAD", "/v2/wisp/wrongsize/blobs/\(image.layer.digest)"):
                // The scripted server states the body's length: 0 bytes where 5120 are expected.
                return .respond(status: 200, headers: [], body: [])
            case ("HEAD", _): return .respond(status: 404, headers: [], body: [])
            case ("POST", "/v2/wisp/elsewhere/blobs/uploads/"):
                return .respond(status: 202, headers: [("Location", "http://127.0.0.2:9/steal")], body: [])
            case ("POST", "/v2/wisp/nolocation/blobs/uploads/"): return .respond(status: 202, headers: [], body: [])
            case ("POST", "/v2/wisp/huge/blobs/uploads/"):
                return .respond(status: 202, headers: [("Location", "/v2/u/" + String(repeating: "a", count: 9000))], body: [])
            default: return .respond(status: 404, headers: [], body: [])
            }
        }
        func push(_ repository: String) async throws {
            let reference = try OCIReference.parse("docker://127.0.0.1:\(server.port)/wisp/\(repository):v1")
            guard case .registry(let registry) = reference else { return }
            _ = try await OCIPusher(reference: registry, authFiles: []).push(image)
        }
        await expectError(.permissionDenied, ["sent the upload to another place", "127.0.0.2:9"]) { try await push("elsewhere") }
        await expectError(.corrupt, ["no Location"]) { try await push("nolocation") }
        await expectError(.corrupt, ["not a URL"]) { try await push("huge") }
        await expectError(.corrupt, ["with 0 bytes, not \(image.layer.size)"]) { try await push("wrongsize") }
        // No PUT ever left: the only uploads refused were the registry's own answers.
        #expect(server.requests.withLock { $0 }.allSatisfy { $0.method != "PUT" })
    }

    @Test func tarHeadersFollowUstar() throws {
        let work = try TemporaryDirectory("wisp-oci-containerdisk-tar")
        let image = try Self.image(work)
        let listing = try ToolRunner.check("tar", ["--numeric-owner", "-tvf", work.file("layer.tar")]).stdoutText
        let lines = listing.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        #expect(lines.count == 2)
        #expect(lines.map { String($0[1]) } == ["107/107", "107/107"])
        #expect(lines.map { String($0.last ?? "") } == ["disk/", "disk/d.qcow2"])
        #expect(lines.last.map { String($0[2]) } == "3000")
        // Sizes past the 8 GiB octal field go base-256.
        let big = ContainerDiskImage.header(name: "disk/x.qcow2", mode: 0o444, size: 10 << 30, type: "0")
        #expect(big[124] == 0x80 && Array(big[131...135]) == [0x02, 0x80, 0x00, 0x00, 0x00])
    }
}
