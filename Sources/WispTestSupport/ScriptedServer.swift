#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore

/// A raw HTTP/1.1 server on 127.0.0.1 whose every answer is scripted by the test:
/// headers of its choosing, bodies cut mid-way, or silence. It plays the misbehaving
/// registries (and the storage a registry redirects to) that a real registry cannot, and the
/// distribution mirrors that cut or stall a download.
public final class ScriptedServer: @unchecked Sendable {
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var headers: [String: String]
    }

    public enum Action: Sendable {
        case respond(status: Int, headers: [(String, String)], body: [UInt8])
        /// Sends the head and the first `after` bytes of `body`, then closes.
        case cut(status: Int, headers: [(String, String)], body: [UInt8], after: Int)
        /// Reads the request and says nothing for `seconds`.
        case stall(seconds: UInt32)
        /// Sends the head and the first `after` bytes of `body`, then says nothing for
        /// `seconds` (a transfer a user interrupts).
        case trickle(status: Int, headers: [(String, String)], body: [UInt8], after: Int, seconds: UInt32)
        /// Sends the head without Content-Length, then `body`, then closes (an HTTP/1.1
        /// body delimited by the end of the connection: its size is unknown until it ends).
        case unsized(status: Int, headers: [(String, String)], body: [UInt8])
    }

    public let port: UInt16
    public let requests = LockedValue<[Request]>([])
    private let listenFD: Int32
    private let handler: @Sendable (Request) -> Action
    private let stopped = LockedValue(false)

    public var base: String { "http://127.0.0.1:\(port)" }

    public init(_ handler: @escaping @Sendable (Request) -> Action) throws {
        self.handler = handler
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard fd >= 0, bound == 0, listen(fd, 16) == 0 else { throw WispError(.io, "scripted server: cannot listen") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        listenFD = fd
        let thread = Thread { [self] in self.acceptLoop() }
        thread.start()
    }

    public func stop() {
        guard !stopped.withLock({ value -> Bool in defer { value = true }; return value }) else { return }
        shutdown(listenFD, Int32(SHUT_RDWR))
        close(listenFD)
    }

    deinit { stop() }

    private func acceptLoop() {
        while !stopped.withLock({ $0 }) {
            let client = accept(listenFD, nil, nil)
            if client < 0 { if errno == EINTR { continue } else { return } }
            let thread = Thread { [self] in
                self.serve(client)
                close(client)
            }
            thread.start()
        }
    }

    private func serve(_ client: Int32) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !buffer.suffix(4).elementsEqual([13, 10, 13, 10]) || buffer.count < 4 {
            let n = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if n <= 0 || buffer.count > 65536 { return }
            buffer += chunk[0..<n]
            if let end = Self.headerEnd(buffer) { buffer = Array(buffer[..<end]); break }
        }
        let lines = String(decoding: buffer, as: UTF8.self).components(separatedBy: "\r\n")
        let first = lines.first?.split(separator: " ") ?? []
        guard first.count >= 2 else { return }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let request = Request(method: String(first[0]), path: String(first[1]), headers: headers)
        requests.withLock { $0.append(request) }
        switch handler(request) {
        case .respond(let status, let extra, let body):
            send(client, head(status, extra, length: body.count) + body)
        case .cut(let status, let extra, let body, let after):
            send(client, head(status, extra, length: body.count) + body.prefix(after))
        case .stall(let seconds):
            sleep(seconds)
        case .trickle(let status, let extra, let body, let after, let seconds):
            send(client, head(status, extra, length: body.count) + body.prefix(after))
            sleep(seconds)
        case .unsized(let status, let extra, let body):
            send(client, head(status, extra, length: nil) + body)
        }
    }

    static func headerEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { return i + 4 }
        return nil
    }

    private func head(_ status: Int, _ headers: [(String, String)], length: Int?) -> [UInt8] {
        var text = "HTTP/1.1 \(status) Scripted\r\n" + (length.map { "Content-Length: \($0)\r\n" } ?? "") + "Connection: close\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        return Array((text + "\r\n").utf8)
    }

    private func send(_ client: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }
}
