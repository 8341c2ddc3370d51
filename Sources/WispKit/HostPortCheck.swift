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
            if let holder = instanceHolding(forward, store: store, except: except) {
                throw WispError(.busy, "host port \(forward.hostPort) is taken by instance \(holder) (wisp stop \(holder), or pick another port)")
            }
            throw WispError(.busy, "host port \(forward.hostAddress):\(forward.hostPort) is in use by another program (pick another port)")
        }
    }

    /// The running instance whose record forwards `port`, if any.
    static func instanceHolding(_ forward: PortForward, store: InstanceStore, except: String?) -> String? {
        for name in store.names() where name != except {
            guard let record = try? store.load(name),
                  record.spec.forwards.contains(where: { $0.hostPort == forward.hostPort && $0.transport == forward.transport }) else { continue }
            if InstanceState.probe(store.files(name)).state != .stopped { return name }
        }
        return nil
    }
}
