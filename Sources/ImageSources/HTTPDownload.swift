import CLinux
import Foundation
import OCI
import WispCore

/// One streaming GET through libcurl on a thread of its own (no task-pool thread blocks on
/// the network), the body handed to a sink as it arrives.
enum HTTPDownload {
    /// libcurl's answer when a Range request was ignored (CURLE_RANGE_ERROR).
    static let rangeRefused: Int32 = 33

    /// Returns the body's SHA-256 (lowercase hex). A status outside 2xx is an error naming
    /// the URL and the status (`.notFound` for 404 and 410).
    static func fetch(_ url: URL, into file: PosixFile, progress: (@Sendable (UInt64, UInt64?) -> Void)?) async throws -> String {
        let hasher = SHA256Digester()
        var written: UInt64 = 0
        let sink = BodySink(progress: progress, spaceCheck: { total in
            try DiskSpace.require(total, for: file.displayPath, what: "the download (\(ByteSize.format(total)))", alreadyHeld: 0)
        }, receive: { bytes in
            try file.write(bytes, at: written)
            hasher.update(bytes)
            written += UInt64(bytes.count)
        })
        try await get(url, sink: sink)
        return hasher.finalize().hex
    }

    /// A small body (a checksum file, a directory listing, a signature) into memory; more
    /// than `limit` bytes is refused as not what was asked for.
    static func text(_ url: URL, limit: Int, stallSeconds: Int = 0) async throws -> [UInt8] {
        let body = LockedValue<[UInt8]>([])
        let sink = BodySink(progress: nil, spaceCheck: nil) { bytes in
            try body.withLock { body in
                guard body.count + bytes.count <= limit else {
                    throw WispError(.invalidArgument, "\(url.absoluteString): larger than \(ByteSize.format(UInt64(limit))), not a checksum file or listing")
                }
                body += bytes
            }
        }
        try await get(url, stallSeconds: stallSeconds, sink: sink)
        return body.withLock { $0 }
    }

    /// The GET itself, from byte `offset` on (a Range request; `.unsupported` when the
    /// server ignored it). Errors say the URL and name the kind: `.notFound` (404/410),
    /// `.timedOut` (stalled), `.connectionClosed` (cut mid-body), `.io` otherwise.
    static func get(_ url: URL, from offset: UInt64 = 0, stallSeconds: Int = 0, sink: BodySink) async throws {
        let link = url.absoluteString
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            let thread = Thread {
                var status = 0
                var message = [CChar](repeating: 0, count: 512)
                let context = Unmanaged.passUnretained(sink).toOpaque()
                let code = wisp_http_get_from(link, offset, stallSeconds, context, { context, data, size in
                    guard let context, let data else { return 1 }
                    return Unmanaged<BodySink>.fromOpaque(context).takeUnretainedValue()
                        .receive(UnsafeRawBufferPointer(start: data, count: size))
                }, { context, done, total in
                    guard let context else { return 1 }
                    return Unmanaged<BodySink>.fromOpaque(context).takeUnretainedValue().report(done, total)
                }, &status, &message, message.count)
                withExtendedLifetime(sink) {}
                if let failure = sink.failure {
                    continuation.resume(throwing: failure)
                } else if status >= 300 || (code == 0 && !(200..<300).contains(status)) {
                    // libcurl fails only on 4xx/5xx: a 204, a 304 or a 3xx without Location
                    // is not an image either.
                    // 416: a resumed file already complete or changed; the caller starts over.
                    let kind: WispError.Kind = status == 404 || status == 410 ? .notFound : status == 416 ? .unsupported : .failed
                    continuation.resume(throwing: WispError(kind, "\(link): download failed: the server answered HTTP \(status)"))
                } else if code != 0 {
                    let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    let kind: WispError.Kind = switch code {
                    case 28: .timedOut               // CURLE_OPERATION_TIMEDOUT: the low-speed limit
                    case 18, 56: .connectionClosed   // CURLE_PARTIAL_FILE, CURLE_RECV_ERROR
                    case rangeRefused: .unsupported
                    default: .io
                    }
                    let sentence = kind == .timedOut ? "the server sent nothing for \(stallSeconds > 0 ? stallSeconds : 60) s (\(reason))" : reason
                    continuation.resume(throwing: WispError(kind, "\(link): download failed: \(sentence)"))
                } else {
                    continuation.resume(returning: ())
                }
            }
            thread.name = "wisp-download"
            thread.start()
        }
    }
}

/// Where libcurl's body bytes go. Touched only by the download thread while it runs.
final class BodySink: @unchecked Sendable {
    let progress: (@Sendable (UInt64, UInt64?) -> Void)?
    /// Called once with the size the server announced (for this transfer).
    let spaceCheck: ((UInt64) throws -> Void)?
    let consume: (UnsafeRawBufferPointer) throws -> Void
    var failure: Error?
    var spaceChecked = false

    init(progress: (@Sendable (UInt64, UInt64?) -> Void)?, spaceCheck: ((UInt64) throws -> Void)?,
         receive: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        self.progress = progress
        self.spaceCheck = spaceCheck
        self.consume = receive
    }

    /// 0 to go on; anything else makes libcurl abort (the error is kept in `failure`).
    func receive(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        do {
            try consume(bytes)
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
                try spaceCheck?(total)
            } catch {
                failure = error
                return 1
            }
        }
        progress?(done, total > 0 ? total : nil)
        return 0
    }
}
