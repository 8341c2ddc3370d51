import Foundation
import Testing
import DiskImage
import MetadataService
import WispCore
import WispTestSupport
@testable import ImageSources

@Suite struct ImageSourceTests {
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
            #expect(try ImageCacheDirectory.sha256(of: path) == expected, "size \(size), from the file")
            // Fed in uneven pieces, the same digest.
            var pieces = SHA256()
            var i = 0
            while i < size { let n = min(13 + i % 97, size - i); pieces.update(Array(bytes[i..<(i + n)])); i += n }
            #expect(SHA256.hex(pieces.finalize()) == expected, "size \(size) in pieces")
        }
    }

    @Test func referencesPickTheirSource() throws {
        #expect(try ImageReference.parse("http://127.0.0.1:8080/a.qcow2") is HTTPImageSource)
        #expect(try ImageReference.parse("https://example.org/x/y.img") is HTTPImageSource)
        #expect(try ImageReference.parse("debian.qcow2") is LocalFileSource)
        #expect(try ImageReference.parse("/var/lib/images/a:b.raw") is LocalFileSource)
        for bad in ["ftp://host/a.qcow2", "s3://bucket/a.raw", "", "http://"] {
            do {
                _ = try ImageReference.parse(bad)
                Issue.record("\(bad) was accepted")
            } catch let error as WispError {
                #expect(error.kind == .usage, "\(bad): \(error)")
            }
        }
        #expect(try ImageReference.parseDigest("SHA256:" + String(repeating: "AB", count: 32)) == String(repeating: "ab", count: 32))
        #expect(throws: WispError.self) { try ImageReference.parseDigest("md5:abc") }
    }

    @Test func localFilesResolveInPlaceWithTheirFormat() async throws {
        let dir = try TemporaryDirectory("wisp-local")
        let qcow2 = dir.file("disk.qcow2")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", qcow2, "64M"])
        let cache = ImageCacheDirectory(path: dir.file("cache"))
        let resolved = try await ImageReference.parse(qcow2).resolve(ImageResolveContext(cache: cache))
        #expect(resolved.path == qcow2)
        #expect(resolved.format == .qcow2)
        #expect(resolved.origin == .localFile && !resolved.origin.isFromOutside)
        #expect(!FileManager.default.fileExists(atPath: cache.path), "a local file must not touch the cache")
        // A pinned digest is checked against the file itself.
        let actual = try ImageCacheDirectory.sha256(of: qcow2)
        #expect(try await LocalFileSource(reference: qcow2).resolve(ImageResolveContext(cache: cache, expectedDigest: actual)).sha256 == actual)
        do {
            _ = try await LocalFileSource(reference: qcow2).resolve(ImageResolveContext(cache: cache, expectedDigest: String(repeating: "0", count: 64)))
            Issue.record("a wrong digest was accepted")
        } catch let error as WispError {
            #expect(error.kind == .digestMismatch)
        }
        for (path, kind) in [(dir.file("missing.qcow2"), WispError.Kind.notFound), (dir.path, .invalidArgument)] {
            do {
                _ = try await LocalFileSource(reference: path).resolve(ImageResolveContext(cache: cache))
                Issue.record("\(path) resolved")
            } catch let error as WispError {
                #expect(error.kind == kind, "\(path): \(error)")
            }
        }
    }

    @Test func downloadsOnceAndVerifiesTheDigest() async throws {
        let dir = try TemporaryDirectory("wisp-cache")
        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let hits = LockedValue(0)
        let server = try HTTPServer { request in
            guard request.path.hasPrefix("/images/disk.qcow2") else { return .notFound() }
            hits.withLock { $0 += 1 }
            return HTTPResponse(status: 200, reason: "OK", contentType: "application/octet-stream", body: payload)
        }
        defer { server.stop() }
        var h = SHA256(); h.update(payload)
        let digest = SHA256.hex(h.finalize())
        let cache = ImageCacheDirectory(path: dir.file("cache"))
        let url = "http://127.0.0.1:\(server.port)/images/disk.qcow2"
        let announced = LockedValue([String]())
        let context = ImageResolveContext(cache: cache, expectedDigest: digest, announce: { line in announced.withLock { $0.append(line) } })
        let first = try await ImageReference.parse(url).resolve(context)
        #expect(FileManager.default.contents(atPath: first.path) == Data(payload))
        #expect(first.origin == .download(url: url) && first.origin.isFromOutside)
        #expect(first.sha256 == digest)
        #expect(first.format == .raw)
        let second = try await ImageReference.parse(url).resolve(context)
        #expect(second.path == first.path)
        #expect(hits.withLock { $0 } == 1)
        // "downloading" is said once: the second resolve used the cached copy, and says so.
        #expect(announced.withLock { $0 } == ["downloading \(url)", "using the cached copy of \(url) (\(first.path)): nothing to download"])

        // A wrong digest fails and caches nothing; a 404 fails with the status, as notFound.
        do {
            _ = try await HTTPImageSource(reference: url + "?v=2").resolve(ImageResolveContext(cache: cache, expectedDigest: String(repeating: "0", count: 64)))
            Issue.record("a wrong digest was accepted")
        } catch let error as WispError {
            #expect(error.kind == .digestMismatch, "\(error)")
        }
        do {
            _ = try await HTTPImageSource(reference: "http://127.0.0.1:\(server.port)/nope").resolve(ImageResolveContext(cache: cache))
            Issue.record("a 404 was cached")
        } catch let error as WispError {
            #expect(error.kind == .notFound, "\(error)")
            #expect(error.message.contains("HTTP 404"), "\(error)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.path).filter { !($0.hasPrefix(".") && $0.hasSuffix(".lock")) }.count == 1, "one entry; besides it only the per-URL download locks")
        // Nobody listening: one sentence naming the URL, and nothing cached.
        server.stop()
        do {
            _ = try await HTTPImageSource(reference: "http://127.0.0.1:\(server.port)/gone.qcow2").resolve(ImageResolveContext(cache: cache))
            Issue.record("a download from a closed port succeeded")
        } catch let error as WispError {
            #expect(error.kind == .io, "\(error)")
            #expect(error.message.contains("http://127.0.0.1:\(server.port)/gone.qcow2: download failed"), "\(error)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.path).filter { !($0.hasPrefix(".") && $0.hasSuffix(".lock")) }.count == 1, "one entry; besides it only the per-URL download locks")
    }
}
