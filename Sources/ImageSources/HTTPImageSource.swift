import CLinux
import DiskImage
import Foundation
import WispCore

/// An image at an http(s) URL: downloaded once into the cache (keyed by the URL), verified
/// against the pinned digest when there is one (a cached copy is re-verified before use).
/// The transfer is libcurl's, loaded on first use (`Sources/CLinux/http.c`): redirects to
/// http/https only, proxies from the environment, TLS with the system's CAs.
public struct HTTPImageSource: ImageSource {
    public let reference: String
    let url: URL

    public static func handles(_ text: String) -> Bool {
        text.hasPrefix("http://") || text.hasPrefix("https://")
    }

    public init(reference: String) throws {
        guard let url = URL(string: reference), url.host != nil else {
            throw WispError.usage("\(reference) is not a valid URL")
        }
        self.reference = reference
        self.url = url
    }

    /// `<first 16 hex of sha256(URL)>-<sanitised file name>`: one entry per URL, named so a
    /// person can tell what it holds.
    var cacheLeaf: String {
        var hasher = SHA256()
        hasher.update(Array(reference.utf8))
        let key = String(SHA256.hex(hasher.finalize()).prefix(16))
        let stem = Self.sanitize(url.deletingPathExtension().lastPathComponent)
        return "\(key)-\(stem)" + (url.pathExtension.isEmpty ? "" : ".\(Self.sanitize(url.pathExtension))")
    }

    static func sanitize(_ text: String) -> String {
        let cleaned = String(text.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "-" }.prefix(64))
        return cleaned.isEmpty || cleaned.allSatisfy({ $0 == "." }) ? "image" : cleaned
    }

    public func resolve(_ context: ImageResolveContext) async throws -> ResolvedImage {
        try context.cache.create()
        let target = "\(context.cache.path)/\(cacheLeaf)"
        let origin = ImageOrigin.download(url: reference)
        if FileManager.default.fileExists(atPath: target) {
            if let expected = context.expectedDigest { try ImageCacheDirectory.verify(target, expected: expected) }
            context.announce?("using the cached copy of \(reference) (\(target)): nothing to download")
            return try ResolvedImage(path: target, format: try Self.format(of: target), sha256: context.expectedDigest, origin: origin)
                .importingArchive(context, reference: reference)
        }
        // Two commands on the same URL at once: one downloads, the other waits and uses it.
        let lock = try FileLock.exclusive("\(context.cache.path)/.\(cacheLeaf).lock", waiting: { _ in
            context.announce?("waiting for another wisp that is downloading \(reference)")
        })
        defer { lock.release() }
        if FileManager.default.fileExists(atPath: target) {
            if let expected = context.expectedDigest { try ImageCacheDirectory.verify(target, expected: expected) }
            return try ResolvedImage(path: target, format: try Self.format(of: target), sha256: context.expectedDigest, origin: origin)
                .importingArchive(context, reference: reference)
        }
        context.announce?("downloading \(reference)")
        let output = try AtomicOutput(path: target, permissions: 0o644)
        let actual: String
        do {
            actual = try await HTTPDownload.fetch(url, into: output.file, progress: context.progress)
        } catch {
            output.discard()
            throw error
        }
        if let expected = context.expectedDigest, actual != expected {
            output.discard()
            throw WispError(.digestMismatch, "\(reference): downloaded file has sha256:\(actual), expected sha256:\(expected) (nothing was cached)")
        }
        try output.commit()
        return try ResolvedImage(path: target, format: try Self.format(of: target), sha256: actual, origin: origin)
            .importingArchive(context, reference: reference)
    }

    static func format(of path: String) throws -> ImageFormat {
        try MachineArchiveProbe.diskFormat(of: path)
    }
}
