#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore
import Machine

/// Attaches the terminal to an instance's serial console socket until Ctrl-] (like telnet
/// and virsh console) or until QEMU closes it.
public enum SerialConsole {
    public static func attach(_ files: InstanceFiles, name: String) throws {
        let socket: UnixSocket
        do { socket = try UnixSocket(connectingTo: files.consoleSocket) } catch {
            throw WispError(.failed, "instance \(name) has no console to attach to (is it running? wisp start \(name))")
        }
        FileHandle.standardError.write(Data("wisp: attached to the serial console of \(name); press Ctrl-] to detach\r\n".utf8))
        var saved = termios()
        let isTTY = isatty(STDIN_FILENO) == 1
        if isTTY {
            tcgetattr(STDIN_FILENO, &saved)
            var raw = saved
            cfmakeraw(&raw)
            tcsetattr(STDIN_FILENO, TCSANOW, &raw)
        }
        defer { if isTTY { tcsetattr(STDIN_FILENO, TCSANOW, &saved) } }
        var fds = [pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: socket.fd, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            fds[0].revents = 0
            fds[1].revents = 0
            if poll(&fds, 2, -1) < 0 { if errno == EINTR { continue }; break }
            if fds[1].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { recv(socket.fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                _ = buffer.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, n) }
            }
            if fds[0].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                if let escape = buffer[0..<n].firstIndex(of: 0x1D) {  // Ctrl-]
                    if escape > 0 { try? socket.write(Array(buffer[0..<escape])) }
                    break
                }
                try socket.write(Array(buffer[0..<n]))
            }
        }
        FileHandle.standardError.write(Data("\r\nwisp: detached from \(name)\r\n".utf8))
    }
}
