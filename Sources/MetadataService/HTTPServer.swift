#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore

public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    public var path: String
    public var headers: [String: String]
    public var body: [UInt8]
}

public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var reason: String
    public var contentType: String
    public var body: [UInt8]

    public init(status: Int, reason: String, contentType: String = "text/plain", body: [UInt8]) {
        self.status = status
        self.reason = reason
        self.contentType = contentType
        self.body = body
    }

    public static func notFound() -> HTTPResponse { HTTPResponse(status: 404, reason: "Not Found", body: Array("not found\n".utf8)) }
}

/// A small HTTP/1.1 server on a TCP socket, one connection at a time on its own thread.
/// The guest's cloud-init fetches a handful of small files and posts one phone_home, so a
/// full event-loop stack would cost far more build time than it saves. Requests are hostile:
/// header and body sizes are capped, malformed requests get 400 and the connection closes.
public final class HTTPServer: @unchecked Sendable {
    public let port: UInt16
    public let address: String
    private let listenFD: Int32
    private let handler: @Sendable (HTTPRequest) -> HTTPResponse
    private let stopped = LockedValue(false)
    private var thread: Thread?

    static let maxHeaderBytes = 64 << 10
    static let maxBodyBytes = 4 << 20

    /// Binds `address:port` (port 0 picks a free one) and starts serving.
    public init(address: String = "127.0.0.1", port: UInt16 = 0, handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) throws {
        self.address = address
        self.handler = handler
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw WispError.posix("socket", "\(address):\(port)", errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        guard inet_pton(AF_INET, address, &sin.sin_addr) == 1 else {
            close(fd)
            throw WispError.invalidArgument("\(address) is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let code = errno
            close(fd)
            throw WispError(.busy, "cannot listen on \(address):\(port): \(String(cString: strerror(code)))")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.port = UInt16(bigEndian: actual.sin_port)
        listenFD = fd
        let thread = Thread { [self] in self.acceptLoop() }
        thread.name = "wisp-http"
        self.thread = thread
        thread.start()
    }

    /// Stops accepting; the listening socket is closed so the port is free again.
    public func stop() {
        let already = stopped.withLock { value -> Bool in
            defer { value = true }
            return value
        }
        guard !already else { return }
        shutdown(listenFD, Int32(SHUT_RDWR))
        close(listenFD)
    }

    deinit { stop() }

    private func acceptLoop() {
        while !stopped.withLock({ $0 }) {
            let client = accept(listenFD, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            serve(client)
            close(client)
        }
    }

    private func serve(_ client: Int32) {
        var buffer = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            // Keep-alive: answer requests on this connection until the peer closes it.
            let response: HTTPResponse
            var keepAlive = true
            switch Self.parseRequest(&buffer) {
            case .needMore:
                guard buffer.count <= Self.maxHeaderBytes + Self.maxBodyBytes else { return }
                let n = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return }
                buffer += chunk[0..<n]
                continue
            case .bad(let reason):
                response = HTTPResponse(status: 400, reason: "Bad Request", body: Array("\(reason)\n".utf8))
                keepAlive = false
            case .request(let request):
                response = handler(request)
                if request.headers["connection"]?.lowercased() == "close" { keepAlive = false }
            }
            var head = "HTTP/1.1 \(response.status) \(response.reason)\r\nContent-Type: \(response.contentType)\r\nContent-Length: \(response.body.count)\r\n"
            head += keepAlive ? "\r\n" : "Connection: close\r\n\r\n"
            let bytes = Array(head.utf8) + response.body
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return }
                offset += n
            }
            if !keepAlive { return }
        }
    }

    enum ParseResult: Equatable {
        case needMore
        case bad(String)
        case request(HTTPRequest)
    }

    /// Takes one complete request off the front of `buffer`, if there is one.
    static func parseRequest(_ buffer: inout [UInt8]) -> ParseResult {
        let terminator: [UInt8] = [13, 10, 13, 10]
        guard buffer.count >= 4 else { return .needMore }
        var headerEnd: Int? = nil
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && Array(buffer[i..<(i + 4)]) == terminator {
            headerEnd = i
            break
        }
        guard let headerEnd else {
            return buffer.count > maxHeaderBytes ? .bad("request header too large") : .needMore
        }
        guard headerEnd <= maxHeaderBytes else { return .bad("request header too large") }
        let headText = String(decoding: buffer[..<headerEnd], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1.") else { return .bad("malformed request line") }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { return .bad("malformed header line") }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        if headers["transfer-encoding"] != nil { return .bad("chunked request bodies are not accepted") }
        var length = 0
        if let text = headers["content-length"] {
            guard let value = Int(text), value >= 0, value <= maxBodyBytes else { return .bad("bad or too large Content-Length") }
            length = value
        }
        let bodyStart = headerEnd + 4
        guard buffer.count - bodyStart >= length else { return .needMore }
        let body = Array(buffer[bodyStart..<(bodyStart + length)])
        buffer.removeSubrange(0..<(bodyStart + length))
        return .request(HTTPRequest(method: String(requestLine[0]), path: String(requestLine[1]), headers: headers, body: body))
    }
}
