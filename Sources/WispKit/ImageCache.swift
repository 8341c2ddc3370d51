#if canImport(Glibc)
import Glibc
#endif
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import WispCore

/// Turns `wisp run`'s IMAGE into a local file: a path is used in place (never written); an
/// http(s) URL is downloaded once into `$XDG_CACHE_HOME/wisp/images` and verified against
/// `--digest sha256:HEX` when given (a cached copy is re-verified before use).
public struct ImageCache: Sendable {
    public let directory: String

    public init(paths: WispPaths = WispPaths()) { directory = paths.images.path }

    public static func isURL(_ image: String) -> Bool {
        image.hasPrefix("http://") || image.hasPrefix("https://")
    }

    /// Parses `sha256:HEX` into lowercase hex.
    public static func parseDigest(_ text: String) throws -> String {
        let parts = text.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "sha256", parts[1].count == 64,
              parts[1].allSatisfy({ $0.isHexDigit }) else {
            throw WispError.invalidArgument("--digest \(text): expected sha256: followed by 64 hex digits")
        }
        return parts[1].lowercased()
    }

    public func resolve(_ image: String, digest: String?, progress: (@Sendable (UInt64, UInt64?) -> Void)? = nil) async throws -> String {
        let expected = try digest.map(Self.parseDigest)
        guard Self.isURL(image) else {
            let path = URL(fileURLWithPath: image).standardizedFileURL.path
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else {
                throw WispError.notFound("\(image): no such image file")
            }
            guard access(path, R_OK) == 0 else { throw WispError.posix("open", path, errno: errno) }
            if let expected { try Self.verify(path, expected: expected) }
            return path
        }
        guard let url = URL(string: image) else { throw WispError.invalidArgument("\(image) is not a valid URL") }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var hasher = SHA256()
        hasher.update(Array(image.utf8))
        let key = String(SHA256.hex(hasher.finalize()).prefix(16))
        let leaf = InstanceStore.sanitize(url.deletingPathExtension().lastPathComponent) + (url.pathExtension.isEmpty ? "" : ".\(url.pathExtension)")
        let target = "\(directory)/\(key)-\(leaf)"
        if FileManager.default.fileExists(atPath: target) {
            if let expected { try Self.verify(target, expected: expected) }
            return target
        }
        let output = try AtomicOutput(path: target, permissions: 0o644)
        let actual = try await Self.download(url, into: output.file, progress: progress)
        if let expected, actual != expected {
            output.discard()
            throw WispError(.failed, "\(image): downloaded file has sha256:\(actual), expected sha256:\(expected) (nothing was cached)")
        }
        try output.commit()
        return target
    }

    /// Hashes a file in 1 MiB reads; throws unless it matches.
    static func verify(_ path: String, expected: String) throws {
        let file = try PosixFile(path: path, mode: .readOnly)
        defer { file.close() }
        let size = try file.size()
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: UInt64 = 0
        while offset < size {
            let n = Int(min(UInt64(buffer.count), size - offset))
            try buffer.withUnsafeMutableBytes { try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), at: offset) }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            offset += UInt64(n)
        }
        let actual = SHA256.hex(hasher.finalize())
        guard actual == expected else {
            throw WispError(.failed, "\(path) has sha256:\(actual), expected sha256:\(expected)")
        }
    }

    /// Streams the body into `file` while hashing it; returns the hex SHA-256.
    static func download(_ url: URL, into file: PosixFile, progress: (@Sendable (UInt64, UInt64?) -> Void)?) async throws -> String {
        let delegate = DownloadDelegate(file: file, progress: progress)
        let session = URLSession(configuration: .ephemeral, delegate: delegate, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        return try await withCheckedThrowingContinuation { continuation in
            delegate.continuation = continuation
            session.dataTask(with: url).resume()
        }
    }
}

private final class DownloadDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let file: PosixFile
    let progress: (@Sendable (UInt64, UInt64?) -> Void)?
    var continuation: CheckedContinuation<String, Error>?
    var hasher = SHA256()
    var written: UInt64 = 0
    var expectedLength: UInt64?
    var failure: Error?

    init(file: PosixFile, progress: (@Sendable (UInt64, UInt64?) -> Void)?) {
        self.file = file
        self.progress = progress
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        if let http = response as? HTTPURLResponse, !(200..<300).contains(http.statusCode) {
            failure = WispError(.failed, "\(response.url?.absoluteString ?? "download"): the server answered HTTP \(http.statusCode)")
            completionHandler(.cancel)
            return
        }
        if response.expectedContentLength > 0 { expectedLength = UInt64(response.expectedContentLength) }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard failure == nil else { return }
        do {
            try data.withUnsafeBytes { raw in
                try file.write(raw, at: written)
                hasher.update(raw)
            }
            written += UInt64(data.count)
            progress?(written, expectedLength)
        } catch {
            failure = error
            dataTask.cancel()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if let failure {
            continuation?.resume(throwing: failure)
        } else if let error {
            continuation?.resume(throwing: WispError(.failed, "\(task.originalRequest?.url?.absoluteString ?? "download") failed: \(error.localizedDescription)"))
        } else {
            continuation?.resume(returning: SHA256.hex(hasher.finalize()))
        }
        continuation = nil
    }
}
