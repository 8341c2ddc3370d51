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
            let key = "\(forward.hostPort)/\(forward.transport.rawValue)"
            guard seen.insert(key).inserted else {
                throw WispError.usage("-p \(key): host port \(key) is forwarded twice")
            }
            guard !InstancePorts.canBind(forward) else { continue }
            if let holder = InstancePorts.instances(recording: forward, in: store, except: except).first(where: \.running)?.name {
                throw WispError(.busy, "host port \(forward.hostPort) is taken by instance \(holder) (wisp stop \(holder), or pick another port)")
            }
            throw WispError(.busy, "host port \(forward.hostAddress):\(forward.hostPort) is in use by another program (pick another port)")
        }
    }
}
