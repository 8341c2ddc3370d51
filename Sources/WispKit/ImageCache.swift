#if canImport(Glibc)
import Glibc
#endif
import Foundation
import CLinux
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
            throw WispError(.digestMismatch, "\(image): downloaded file has sha256:\(actual), expected sha256:\(expected) (nothing was cached)")
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
            throw WispError(.digestMismatch, "\(path) has sha256:\(actual), expected sha256:\(expected)")
        }
    }

    /// Streams the body into `file` while hashing it; returns the hex SHA-256. The transfer
    /// is libcurl's (redirects, proxies from the environment, TLS with the system's CAs), on a
    /// thread of its own so no task-pool thread blocks on the network.
    static func download(_ url: URL, into file: PosixFile, progress: (@Sendable (UInt64, UInt64?) -> Void)?) async throws -> String {
        let sink = DownloadSink(file: file, progress: progress)
        let link = url.absoluteString
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                var status = 0
                var message = [CChar](repeating: 0, count: 512)
                let context = Unmanaged.passUnretained(sink).toOpaque()
                let code = wisp_http_get(link, context, { context, data, size in
                    guard let context, let data else { return 1 }
                    return Unmanaged<DownloadSink>.fromOpaque(context).takeUnretainedValue()
                        .receive(UnsafeRawBufferPointer(start: data, count: size))
                }, { context, done, total in
                    guard let context else { return 1 }
                    Unmanaged<DownloadSink>.fromOpaque(context).takeUnretainedValue().report(done, total)
                    return 0
                }, &status, &message, message.count)
                withExtendedLifetime(sink) {}
                if let failure = sink.failure {
                    continuation.resume(throwing: failure)
                } else if code == 0 && !(200..<300).contains(status) {
                    // libcurl fails only on 4xx/5xx: a 204, a 304 or a 3xx without Location
                    // is not an image either.
                    continuation.resume(throwing: WispError(.failed, "\(link): download failed: the server answered HTTP \(status)"))
                } else if code != 0 {
                    let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    let what = status >= 400 ? "the server answered HTTP \(status)" : reason
                    continuation.resume(throwing: WispError(.failed, "\(link): download failed: \(what)"))
                } else {
                    continuation.resume(returning: SHA256.hex(sink.hasher.finalize()))
                }
            }
            thread.name = "wisp-download"
            thread.start()
        }
    }
}

/// Where libcurl's body bytes go: the cache file, hashed on the way. Touched only by the
/// download thread while the transfer runs.
private final class DownloadSink: @unchecked Sendable {
    let file: PosixFile
    let progress: (@Sendable (UInt64, UInt64?) -> Void)?
    var hasher = SHA256()
    var written: UInt64 = 0
    var failure: Error?

    init(file: PosixFile, progress: (@Sendable (UInt64, UInt64?) -> Void)?) {
        self.file = file
        self.progress = progress
    }

    /// 0 to go on; anything else makes libcurl abort (a write error is kept in `failure`).
    func receive(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        do {
            try file.write(bytes, at: written)
            hasher.update(bytes)
            written += UInt64(bytes.count)
            return 0
        } catch {
            failure = error
            return 1
        }
    }

    func report(_ done: UInt64, _ total: UInt64) {
        progress?(done, total > 0 ? total : nil)
    }
}
