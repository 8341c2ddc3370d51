import Foundation
import Testing
import MetadataService
import WispCore
import WispTestSupport
@testable import WispKit

@Suite struct ImageCacheTests {
    @Test func sha256MatchesSha256sum() throws {
        let dir = try TemporaryDirectory("wisp-sha")
        for size in [0, 1, 55, 56, 63, 64, 65, 1000, 1 << 20 + 7] {
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let path = dir.file("f\(size)")
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
            let expected = String(try ToolRunner.check("sha256sum", [path]).stdoutText.prefix(64))
            var whole = SHA256()
            whole.update(bytes)
            #expect(SHA256.hex(whole.finalize()) == expected, "size \(size)")
            // Fed in uneven pieces, the same digest.
            var pieces = SHA256()
            var i = 0
            while i < size { let n = min(13 + i % 97, size - i); pieces.update(Array(bytes[i..<(i + n)])); i += n }
            #expect(SHA256.hex(pieces.finalize()) == expected, "size \(size) in pieces")
        }
    }

    @Test func downloadsOnceAndVerifiesTheDigest() async throws {
        let dir = try TemporaryDirectory("wisp-cache")
        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let hits = LockedValue(0)
        let server = try HTTPServer { request in
            guard request.path == "/images/disk.qcow2" else { return .notFound() }
            hits.withLock { $0 += 1 }
            return HTTPResponse(status: 200, reason: "OK", contentType: "application/octet-stream", body: payload)
        }
        defer { server.stop() }
        var h = SHA256(); h.update(payload)
        let digest = "sha256:" + SHA256.hex(h.finalize())
        let cache = ImageCache(paths: WispPaths(environment: ["HOME": dir.path, "XDG_CACHE_HOME": dir.file("cache")]))
        let url = "http://127.0.0.1:\(server.port)/images/disk.qcow2"
        let path = try await cache.resolve(url, digest: digest)
        #expect(FileManager.default.contents(atPath: path) == Data(payload))
        #expect(try await cache.resolve(url, digest: digest) == path)
        #expect(hits.withLock { $0 } == 1)
        // A wrong digest fails and caches nothing; a 404 fails with the status.
        let wrong = "sha256:" + String(repeating: "0", count: 64)
        await #expect(throws: WispError.self) { try await cache.resolve(url + "?v=2", digest: wrong) }
        do {
            _ = try await cache.resolve("http://127.0.0.1:\(server.port)/nope", digest: nil)
            Issue.record("a 404 was cached")
        } catch {
            #expect("\(error)".contains("HTTP 404"), "\(error)")
        }
        let cached = try FileManager.default.contentsOfDirectory(atPath: dir.file("cache") + "/wisp/images")
        #expect(cached.count == 1, "\(cached)")
        #expect(throws: WispError.self) { try ImageCache.parseDigest("md5:abc") }
        // Nobody listening: one sentence naming the URL, and nothing cached.
        server.stop()
        do {
            _ = try await cache.resolve("http://127.0.0.1:\(server.port)/gone.qcow2", digest: nil)
            Issue.record("a download from a closed port succeeded")
        } catch {
            #expect("\(error)".contains("http://127.0.0.1:\(server.port)/gone.qcow2: download failed"), "\(error)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("cache") + "/wisp/images").count == 1)
        await #expect(throws: WispError.self) { try await cache.resolve(dir.file("missing.qcow2"), digest: nil) }
    }
}
