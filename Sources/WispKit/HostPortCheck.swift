#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Machine
import WispCore

/// Checks, before any instance work, that each host port a guest forwards can be bound, so a
/// taken port is one sentence naming its holder instead of QEMU's error after the overlay
/// was made.
public enum HostPortCheck {
    /// Throws `.usage` for a port asked twice and `.busy` for one another program or instance
    /// holds (naming the instance when it is one of Wisp's). `except` is the instance being
    /// started, whose own record lists the same ports.
    public static func ensureFree(_ forwards: [PortForward], store: InstanceStore, except: String? = nil) throws {
        var seen = Set<String>()
        for forward in forwards {
            let key = "\(forward.hostPort)"
            guard seen.insert(key).inserted else {
                throw WispError.usage("-p \(forward.hostPort): host port \(forward.hostPort) is forwarded twice")
            }
            guard !canBind(address: forward.hostAddress, port: forward.hostPort) else { continue }
            if let holder = instanceHolding(forward.hostPort, store: store, except: except) {
                throw WispError(.busy, "host port \(forward.hostPort) is taken by instance \(holder) (wisp stop \(holder), or pick another port)")
            }
            throw WispError(.busy, "host port \(forward.hostAddress):\(forward.hostPort) is in use by another program (pick another port)")
        }
    }

    /// Whether a TCP listener could be made there now. SO_REUSEADDR as QEMU's user-mode
    /// network sets it, so a port in TIME_WAIT counts as free, as it does for QEMU.
    public static func canBind(address: String, port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        sin.sin_addr.s_addr = inet_addr(address)
        return withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// The running instance whose record forwards `port`, if any.
    static func instanceHolding(_ port: UInt16, store: InstanceStore, except: String?) -> String? {
        for name in store.names() where name != except {
            guard let record = try? store.load(name), record.spec.forwards.contains(where: { $0.hostPort == port }) else { continue }
            if InstanceState.probe(store.files(name)).state != .stopped { return name }
        }
        return nil
    }
}
