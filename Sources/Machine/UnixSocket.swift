#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import WispCore
import CLinux

/// A connected `AF_UNIX` stream socket with blocking reads bounded by a timeout; used for
/// QMP and the serial console, both of which QEMU serves on sockets in the instance directory.
public final class UnixSocket: @unchecked Sendable {
    public let fd: Int32
    public let path: String
    private var buffer: [UInt8] = []

    /// Connects within `timeout` seconds. A listener that serves one client at a time (QEMU's
    /// QMP) stops accepting while another client holds it; once its backlog is full a blocking
    /// connect() would wait for as long as that client stays, so the connect is non-blocking and
    /// retried until the deadline instead.
    public init(connectingTo path: String, timeout: Double = 10) throws {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else {
            throw WispError.invalidArgument("\(path): socket path is longer than \(capacity - 1) bytes (choose a shorter XDG_DATA_HOME or instance name)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw WispError.posix("socket", path, errno: errno) }
        let deadline = Date().addingTimeInterval(max(0, min(timeout, 86_400)))
        while true {
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            if result == 0 { break }
            let code = errno
            // AF_UNIX reports a full backlog as EAGAIN on a non-blocking socket.
            if code == EINTR { continue }
            if code == EAGAIN, Date() < deadline {
                usleep(50_000)
                continue
            }
            close(fd)
            if code == EAGAIN {
                throw WispError.timedOut("\(path): the socket accepted no connection within \(Int(timeout)) seconds (another client holds it)")
            }
            throw WispError.posix("connect", path, errno: code)
        }
        // Reads wait with poll() and writes may block: the descriptor goes back to blocking.
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    public func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw WispError.posix("send", path, errno: errno)
            }
            offset += n
        }
    }

    /// Sends `bytes` with the descriptor `passing` attached (SCM_RIGHTS): QMP's `getfd`
    /// takes a file this way, so a sandboxed QEMU (which may not open or spawn anything
    /// itself) can write or read a migration stream. The rest, if the kernel took only
    /// part, follows without the descriptor.
    public func write(_ bytes: [UInt8], passing descriptor: Int32) throws {
        var sent = 0
        while true {
            let n = bytes.withUnsafeBytes { wisp_send_with_fd(fd, $0.baseAddress, $0.count, descriptor) }
            if n < 0 {
                if errno == EINTR { continue }
                throw WispError.posix("sendmsg", path, errno: errno)
            }
            sent = n
            break
        }
        if sent < bytes.count { try write(Array(bytes[sent...])) }
    }

    /// Waits up to `timeout` seconds for data; returns nil on timeout, [] at end of stream.
    public func readSome(timeout: Double) throws -> [UInt8]? {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ms = Int32(max(0, min(timeout, 86_400)) * 1000)
        while true {
            let r = poll(&pfd, 1, ms)
            if r < 0 {
                if errno == EINTR { continue }
                throw WispError.posix("poll", path, errno: errno)
            }
            if r == 0 { return nil }
            break
        }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { throw WispError.posix("recv", path, errno: errno) }
        return Array(chunk[0..<n])
    }

    /// One `\n`-terminated line (without the newline), at most `limit` bytes: a peer that
    /// never ends its line cannot make us buffer without bound.
    public func readLine(timeout: Double, limit: Int = 16 << 20) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                return String(decoding: line, as: UTF8.self)
            }
            guard buffer.count <= limit else {
                throw WispError.corrupt(path, "QMP message", "longer than \(limit) bytes without a newline")
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0, let chunk = try readSome(timeout: remaining) else {
                throw WispError.timedOut("\(path): no answer within \(Int(timeout)) seconds")
            }
            guard !chunk.isEmpty else { throw WispError(.connectionClosed, "\(path): QEMU closed the connection") }
            buffer += chunk
        }
    }
}
