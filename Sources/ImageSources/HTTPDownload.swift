import CLinux
import Foundation
import OCI
import WispCore

/// One streaming GET through libcurl on a thread of its own (no task-pool thread blocks on
/// the network), the body written to a file and hashed on the way.
enum HTTPDownload {
    /// Returns the body's SHA-256 (lowercase hex). A status outside 2xx is an error naming
    /// the URL and the status (`.notFound` for 404 and 410).
    static func fetch(_ url: URL, into file: PosixFile, progress: (@Sendable (UInt64, UInt64?) -> Void)?) async throws -> String {
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
                    return Unmanaged<DownloadSink>.fromOpaque(context).takeUnretainedValue().report(done, total)
                }, &status, &message, message.count)
                withExtendedLifetime(sink) {}
                if let failure = sink.failure {
                    continuation.resume(throwing: failure)
                } else if status >= 300 || (code == 0 && !(200..<300).contains(status)) {
                    // libcurl fails only on 4xx/5xx: a 204, a 304 or a 3xx without Location
                    // is not an image either.
                    let kind: WispError.Kind = status == 404 || status == 410 ? .notFound : .failed
                    continuation.resume(throwing: WispError(kind, "\(link): download failed: the server answered HTTP \(status)"))
                } else if code != 0 {
                    let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    continuation.resume(throwing: WispError(.io, "\(link): download failed: \(reason)"))
                } else {
                    continuation.resume(returning: sink.hasher.finalize().hex)
                }
            }
            thread.name = "wisp-download"
            thread.start()
        }
    }
}

/// Where libcurl's body bytes go: the cache file, hashed on the way (with libcrypto, as the
/// OCI pull hashes: WispCore's portable SHA-256 is ~13x slower and would be the
/// bottleneck of a fast download). Touched only by the download thread while it runs.
private final class DownloadSink: @unchecked Sendable {
    let file: PosixFile
    let progress: (@Sendable (UInt64, UInt64?) -> Void)?
    let hasher = SHA256Digester()
    var written: UInt64 = 0
    var failure: Error?
    var spaceChecked = false

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

    /// Once the server has said the size, the cache's filesystem must have room for it:
    /// a full disk is found before the transfer, not at its end.
    func report(_ done: UInt64, _ total: UInt64) -> Int32 {
        if total > 0 && !spaceChecked {
            spaceChecked = true
            do {
                try DiskSpace.require(total, for: file.displayPath, what: "the download (\(ByteSize.format(total)))", alreadyHeld: written)
            } catch {
                failure = error
                return 1
            }
        }
        progress?(done, total > 0 ? total : nil)
        return 0
    }
}
