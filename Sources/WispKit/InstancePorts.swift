#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Machine
import WispCore

/// `wisp port`: an instance's forwards, listed and changed. A running guest's forwards are
/// changed live through QMP (`hostfwd_add`/`hostfwd_remove` on its user-mode netdev, the
/// monitor commands QEMU has for this); the record is written only once QEMU agreed, so
/// `wisp start` restores exactly what was in effect. A stopped instance just gets its
/// record changed.
public struct InstancePorts: Sendable {
    public var store: InstanceStore

    public init(store: InstanceStore = InstanceStore()) { self.store = store }

    /// What a change did.
    public struct Change: Sendable, Equatable {
        public var forward: PortForward
        /// The running guest was changed too (not only its record).
        public var live: Bool
        /// A stopped instance whose record forwards the same host port (it would fail to
        /// start while this one holds it).
        public var alsoRecordedBy: [String]
    }

    /// Every forward, the SSH one first.
    public func list(_ name: String) throws -> [PortForward] {
        try store.load(name).spec.forwards
    }

    public func add(_ name: String, _ forward: PortForward) throws -> Change {
        var record = try store.load(name)
        let files = store.files(name)
        if let placement = LibvirtEngine.placement(files) {
            throw WispError(.unsupported, "\(name)'s forwards are part of its libvirt domain (\(placement.domain) on \(placement.uri)): wisp port add and rm work on instances of Wisp's own QEMU")
        }
        let lock = try InstanceLock(path: files.lock, name: name)
        defer { lock.release() }
        if let existing = record.spec.forwards.first(where: { $0.hostPort == forward.hostPort && $0.transport == forward.transport }) {
            throw WispError(.alreadyExists, "\(name) already forwards host port \(forward.hostPort)/\(forward.transport.rawValue) (\(existing)); remove it first with wisp port rm \(name) \(forward.hostPort)/\(forward.transport.rawValue)")
        }
        let holders = otherInstances(recording: forward, except: name)
        if !Self.canBind(forward) {
            if let running = holders.first(where: { $0.running }) {
                throw WispError(.busy, "host port \(forward.hostPort)/\(forward.transport.rawValue) is held by instance \(running.name) (wisp port rm \(running.name) \(forward.hostPort)/\(forward.transport.rawValue) frees it)")
            }
            throw WispError(.busy, "host port \(forward.hostAddress):\(forward.hostPort)/\(forward.transport.rawValue) cannot be bound: another program holds it, or the address is not on this host")
        }
        let live = try runningQMP(files).map { qmp in
            try humanMonitor(qmp, "hostfwd_add \(QEMUCommandLine.userNetdevID) \(forward.hostfwd)", instance: name)
            return true
        } ?? false
        record.spec.forwards.append(forward)
        try store.save(record)
        return Change(forward: forward, live: live, alsoRecordedBy: holders.filter { !$0.running }.map(\.name))
    }

    public func remove(_ name: String, hostPort: UInt16, transport: PortForward.Transport) throws -> Change {
        var record = try store.load(name)
        let files = store.files(name)
        if let placement = LibvirtEngine.placement(files) {
            throw WispError(.unsupported, "\(name)'s forwards are part of its libvirt domain (\(placement.domain) on \(placement.uri)): wisp port add and rm work on instances of Wisp's own QEMU")
        }
        let lock = try InstanceLock(path: files.lock, name: name)
        defer { lock.release() }
        guard let index = record.spec.forwards.firstIndex(where: { $0.hostPort == hostPort && $0.transport == transport }) else {
            let known = record.spec.forwards.dropFirst().map { "\($0.hostPort)/\($0.transport.rawValue)" }
            throw WispError.notFound("\(name) forwards no host port \(hostPort)/\(transport.rawValue) (its forwards: \(known.isEmpty ? "none besides SSH" : known.joined(separator: ", ")))")
        }
        guard index > 0 else {
            throw WispError.usage("host port \(hostPort) is \(name)'s SSH forward, which Wisp needs to reach the guest: it cannot be removed")
        }
        let forward = record.spec.forwards[index]
        let live = try runningQMP(files).map { qmp in
            // QEMU confirms a removal in words ("host forwarding rule for ... removed").
            try humanMonitor(qmp, "hostfwd_remove \(QEMUCommandLine.userNetdevID) \(forward.hostfwdKey)", instance: name, success: "removed")
            return true
        } ?? false
        record.spec.forwards.remove(at: index)
        try store.save(record)
        return Change(forward: forward, live: live, alsoRecordedBy: [])
    }

    /// A QMP connection when QEMU runs (running, paused or crashed alike: the netdev is
    /// there); nil when the instance is stopped.
    private func runningQMP(_ files: InstanceFiles) throws -> QMPClient? {
        guard let pid = QEMULauncher.readPID(files.pidFile), QEMULauncher.isQEMU(pid: pid) else { return nil }
        do {
            return try QMPClient(socketPath: files.qmpSocket, timeout: 5)
        } catch {
            throw WispError(.engineFailed, "the QEMU of \(files.directory) runs (pid \(pid)) but its QMP socket does not answer: \(error)")
        }
    }

    /// HMP through QMP: the commands answer with text, which is the only way they say they
    /// failed (`hostfwd_add` says nothing on success, `hostfwd_remove` ends with `success`).
    private func humanMonitor(_ qmp: QMPClient, _ command: String, instance: String, success: String? = nil) throws {
        let answer = try qmp.execute("human-monitor-command", arguments: ["command-line": command]).string ?? ""
        let text = answer.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.isEmpty || success.map({ text.hasSuffix($0) }) == true else {
            throw WispError(.engineFailed, "QEMU of \(instance) refused `\(command)`: \(text)")
        }
    }

    private func otherInstances(recording forward: PortForward, except name: String) -> [(name: String, running: Bool)] {
        Self.instances(recording: forward, in: store, except: name)
    }

    /// Instances whose record forwards `forward`'s host port (same transport), and whether
    /// each has a live QEMU: the one lookup behind every "held by instance X" sentence.
    static func instances(recording forward: PortForward, in store: InstanceStore, except name: String?) -> [(name: String, running: Bool)] {
        store.names().filter { $0 != name }.compactMap { other in
            guard let record = try? store.load(other),
                  record.spec.forwards.contains(where: { $0.hostPort == forward.hostPort && $0.transport == forward.transport }) else { return nil }
            let pid = QEMULauncher.readPID(store.files(other).pidFile)
            return (other, pid.map(QEMULauncher.isQEMU) ?? false)
        }
    }

    /// Whether the host side of `forward` can be bound now, as QEMU will bind it (TCP with
    /// SO_REUSEADDR, as slirp does, so a port in TIME_WAIT counts as free).
    public static func canBind(_ forward: PortForward) -> Bool {
        let type = forward.transport == .tcp ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue)
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if forward.transport == .tcp {
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = forward.hostPort.bigEndian
        guard inet_pton(AF_INET, forward.hostAddress, &sin.sin_addr) == 1 else { return false }
        return withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
