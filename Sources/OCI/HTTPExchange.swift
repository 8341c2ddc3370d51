import CLinux
import Foundation
import WispCore

/// One HTTP(S) request through libcurl (`wisp_http_request` in Sources/CLinux/http.c),
/// on a thread of its own so no task-pool thread blocks on the network.
///
/// Why libcurl and not async-http-client: libcurl is already how Wisp downloads (loaded
/// with dlopen on first use, so commands that never pull pay nothing), it brings TLS with
/// the system's CAs, proxies and HTTP/2, and extending the C shim with request headers,
/// response headers and manual redirects cost a few dozen lines; async-http-client would
/// add swift-nio and friends, a 2.5-4.5 minute first build on this 2-core machine, for
/// the handful of request shapes a registry client needs.
struct HTTPExchange {
    struct Response: Sendable {
        var status: Int = 0
        /// Lowercased names; repeated headers keep every value.
        var headers: [String: [String]] = [:]

        func header(_ name: String) -> String? { headers[name.lowercased()]?.first }
    }

    var url: String
    var method = "GET"
    var headers: [String] = []
    var verifyTLS = true
    var stallTimeoutSeconds = 60
    var totalTimeoutSeconds = 0
    /// The body of a POST or PUT: bytes, or a file sent from offset 0 (streamed).
    enum Body { case none, bytes([UInt8]), file(fd: Int32, size: UInt64) }
    var body = Body.none

    /// Performs the request; `body` gets the response (status and headers already read)
    /// with each piece of the body. A throw from `body` aborts the transfer and is
    /// rethrown. A transfer that fails before the response is complete throws
    /// `.timedOut` (stalled), `.connectionClosed` (cut) or `.io`, with `bytesReceived`.
    func perform(_ body: @escaping (Response, UnsafeRawBufferPointer) throws -> Void) async throws -> Response {
        let transfer = Transfer(body: body)
        let request = self
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try request.run(transfer) })
            }
            thread.name = "wisp-registry"
            thread.start()
        }
    }

    private func run(_ transfer: Transfer) throws -> Response {
        var status = 0
        var message = [CChar](repeating: 0, count: 512)
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        let cHeaders = headers.map { strdup($0) }
        defer { cHeaders.forEach { free($0) } }
        let bytes: [UInt8], fd: Int32, size: UInt64
        switch body {
        case .none: (bytes, fd, size) = ([], -1, 0)
        case .bytes(let data): (bytes, fd, size) = (data, -1, UInt64(data.count))
        case .file(let file, let length): (bytes, fd, size) = ([], file, length)
        }
        let code: Int32 = url.withCString { cURL in
            method.withCString { cMethod in
                cHeaders.map { UnsafePointer($0) }.withUnsafeBufferPointer { headerPointers in
                  bytes.withUnsafeBytes { bodyBytes in
                    var request = wisp_http_request(
                        url: cURL, method: cMethod, headers: headerPointers.baseAddress, header_count: headerPointers.count,
                        verify_tls: verifyTLS ? 1 : 0, connect_timeout: 30, stall_timeout: stallTimeoutSeconds,
                        total_timeout: totalTimeoutSeconds,
                        body: fd >= 0 ? nil : (bodyBytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)), body_fd: fd, body_size: size)
                    return wisp_http_request(&request, context, { context, line, size in
                        guard let context, let line else { return 1 }
                        return Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                            .header(UnsafeRawBufferPointer(start: line, count: size))
                    }, { context, data, size in
                        guard let context, let data else { return 1 }
                        return Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                            .receive(UnsafeRawBufferPointer(start: data, count: size))
                    }, nil, &status, &message, message.count)
                  }
                }
            }
        }
        withExtendedLifetime(transfer) {}
        if let failure = transfer.failure { throw failure }
        guard code == 0 else {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            // libcurl's codes: 28 operation timed out, 18 partial file, 52 empty reply,
            // 56 receive failure, 7 could not connect.
            let kind: WispError.Kind = switch code {
            case 28: .timedOut
            case 18, 52, 56: .connectionClosed
            default: .io
            }
            throw WispError(kind, "\(Self.redact(url)): \(reason)")
        }
        var response = transfer.response
        if response.status == 0 { response.status = status }
        return response
    }

    /// Query strings (which may hold signed tokens) are left out of messages.
    static func redact(_ url: String) -> String {
        url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url
    }
}

/// The libcurl callbacks' state, touched only by the transfer's thread.
private final class Transfer: @unchecked Sendable {
    let body: (HTTPExchange.Response, UnsafeRawBufferPointer) throws -> Void
    var response = HTTPExchange.Response()
    var failure: Error?
    var headerBytes = 0

    init(body: @escaping (HTTPExchange.Response, UnsafeRawBufferPointer) throws -> Void) { self.body = body }

    func header(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        headerBytes += bytes.count
        guard headerBytes <= 256 << 10 else {
            failure = WispError(.corrupt, "the server sent more than 256 KiB of response headers")
            return 1
        }
        let line = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if line.hasPrefix("HTTP/") {
            // A new response (after a 100 Continue, or a proxy's CONNECT answer).
            response = HTTPExchange.Response()
            let parts = line.split(separator: " ")
            response.status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        } else if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            response.headers[name, default: []].append(value)
        }
        return 0
    }

    func receive(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        do {
            try body(response, bytes)
            return 0
        } catch {
            failure = error
            return 1
        }
    }
}
