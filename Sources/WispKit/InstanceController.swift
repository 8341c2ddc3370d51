#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore
import Machine
import MetadataService

/// The lifecycle verbs on existing instances: list, start, stop, rm.
public struct InstanceController: Sendable {
    public var store: InstanceStore

    public init(store: InstanceStore = InstanceStore()) { self.store = store }

    public struct Summary: Sendable, Codable, Equatable {
        public var name: String
        public var state: InstanceState
        public var image: String?
        /// A container image's manifest digest (`sha256:...`); nil for disk images.
        public var digest: String?
        /// A catalog image's concrete build (`debian-13` → 20250814-2204).
        public var build: String?
        /// Writes are discarded when the instance stops (`wisp run --ephemeral`).
        public var ephemeral: Bool?
        public var os: String?
        public var address: String?
        public var user: String?
        public var ports: [String]
        public var accel: String?
        /// The guest's CPU architecture ("x86_64", "aarch64").
        public var arch: String?
        public var cpus: Int?
        public var memory: String?
        public var pid: Int32?
        /// Shared folders (`wisp run --mount`), host and guest paths and read-only.
        public var mounts: [SharedFolder] = []
        /// "qemu" (Wisp's own), or "libvirt:URI".
        public var engine: String = "qemu"
    }

    public func list() -> [Summary] {
        store.names().map { name in
            let files = store.files(name)
            let (state, pid) = InstanceState.probe(files)
            guard let record = try? store.load(name) else {
                return Summary(name: name, state: .incomplete, ports: [])
            }
            var digest: String? = nil
            if case .container(_, let d)? = record.baseImage?.origin { digest = d }
            var summary = Summary(name: name, state: state, image: record.image, digest: digest, ephemeral: record.ephemeral, os: record.osName,
                           address: "127.0.0.1:\(record.sshPort)", user: record.user,
                           ports: record.spec.forwards.dropFirst().map(\.description),
                           accel: record.spec.accelerator.rawValue, arch: record.spec.architecture.rawValue, cpus: record.spec.cpus,
                           memory: ByteSize.format(record.spec.memoryBytes), pid: pid, mounts: record.spec.sharedFolders)
            summary.build = record.baseImage?.build
            if let placement = LibvirtEngine.placement(files) { summary.engine = "libvirt:\(placement.uri)" }
            return summary
        }
    }

    /// Boots a stopped (or crashed and then killed) instance and waits until SSH answers,
    /// unless `waitForReady` is false (`wisp start --detach`). A suspended one is resumed.
    public func start(_ name: String, booter: InstanceBooter, waitForReady: Bool = true) throws -> InstanceRecord {
        try startOrResume(name, booter: booter, waitForReady: waitForReady).record
    }

    /// `start`, saying whether a suspended guest was resumed or (its state unusable) booted
    /// cold; `notice` gets the one-line reason. A resume always waits until SSH answers
    /// (it takes seconds), whatever `waitForReady` says.
    public func startOrResume(_ name: String, booter: InstanceBooter, waitForReady: Bool = true,
                              notice: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) })
        throws -> (record: InstanceRecord, resume: InstanceSuspender.ResumeOutcome?) {
        var record = try store.load(name)
        let files = store.files(name)
        let lock = try InstanceLock(path: files.lock, name: name)
        defer { lock.release() }
        let (state, _) = InstanceState.probe(files)
        guard state == .stopped || state == .suspended else {
            throw WispError(.busy, "instance \(name) is already \(state.rawValue) (wisp stop \(name) first)")
        }
        // The forwarded SSH port may have been taken since the last boot: pick another.
        if LibvirtEngine.placement(files) == nil, !InstancePorts.canBind(PortForward(hostPort: record.sshPort, guestPort: 22)) {
            record.sshPort = try InstanceCreator.freePort()
            record.spec.forwards[0] = PortForward(hostPort: record.sshPort, guestPort: 22)
        }
        try HostPortCheck.ensureFree(Array(record.spec.forwards.dropFirst()), store: store, except: name)
        // A guest configured for NoCloud-net reads its seed again at each boot.
        var server: MetadataServer? = nil
        if record.cloudInit == .http, let seedPort = record.metadataPort {
            server = try? MetadataServer(seed: try? RunIntegration.storedSeed(files), port: seedPort, token: record.metadataToken)
        }
        defer { server?.stop() }
        if let placement = LibvirtEngine.placement(files) {
            // The SSH forward is in the domain's definition: a port taken since is a clear error.
            guard InstancePorts.canBind(record.spec.forwards[0]) else {
                throw WispError(.busy, "port \(record.sshPort), \(name)'s SSH forward, is taken on this host (free it, or wisp rm \(name) and run it again)")
            }
            try LibvirtEngine.start(placement, files: files)
            guard waitForReady else { return (record, nil) }
            try booter.waitUntilReady(record, pid: 0, readiness: .init(metadata: nil, waitForSSH: true))
            return (record, nil)
        }
        let coldBoot = { [record] () throws -> InstanceRecord in
            // Normally reset when it stopped; also here for a guest that powered itself off.
            if record.ephemeral { try InstanceDiskChains.resetOverlay(record, files: files) }
            let (booted, pid) = try booter.launch(record)
            guard waitForReady, !booted.consoleOnly else { return booted }
            try booter.waitUntilReady(booted, pid: pid, readiness: .init(metadata: nil, waitForSSH: true))
            return booted
        }
        if state == .suspended {
            // Resumed under the accelerator it was saved with: the record keeps it.
            try store.save(record)
            let (resumed, outcome) = try InstanceSuspender(store: store).resume(record, booter: booter, timeout: booter.timeout,
                                                                                notice: notice, coldBoot: coldBoot)
            return (resumed, outcome)
        }
        return (try coldBoot(), nil)
    }

    /// ACPI power button through QMP; after `timeout` seconds (or at once with `force`) QEMU
    /// is told to quit, and killed if it does not answer. A suspended instance's saved state
    /// is discarded (its next start is a cold boot): the result says so.
    @discardableResult
    public func stop(_ name: String, force: Bool, timeout: Double = 90) throws -> StopOutcome {
        let record = try store.load(name)
        let files = store.files(name)
        let lock = try InstanceLock(path: files.lock, name: name)
        defer { lock.release() }
        var outcome = StopOutcome.stopped
        // Not InstanceState.probe: no QMP connection here (QEMU serves one client at a time,
        // and stopLocked opens its own).
        let live = QEMULauncher.readPID(files.pidFile).map(QEMULauncher.isQEMU) ?? false
        if !live, FileManager.default.fileExists(atPath: files.savedStateDescription) {
            InstanceSuspender.discardState(files)
            outcome = .discardedSavedState
        }
        try stopLocked(files, force: force, timeout: timeout)
        // An ephemeral instance's writes end with its run.
        if record.ephemeral { try InstanceDiskChains.resetOverlay(record, files: files) }
        return outcome
    }

    public enum StopOutcome: Sendable, Equatable {
        case stopped
        /// It was suspended: its saved memory state is gone, the disk stays.
        case discardedSavedState
    }

    func stopLocked(_ files: InstanceFiles, force: Bool, timeout: Double) throws {
        if let placement = LibvirtEngine.placement(files) {
            try LibvirtEngine.stop(placement, force: force, timeout: timeout)
            return
        }
        guard let pid = QEMULauncher.readPID(files.pidFile), QEMULauncher.isQEMU(pid: pid) else {
            InstanceState.repairStale(files)
            return
        }
        if !force, let qmp = try? QMPClient(socketPath: files.qmpSocket, timeout: 5) {
            // A paused or panicked guest cannot react to the power button.
            let status = (try? qmp.status()) ?? "unknown"
            if InstanceState.fromQMPStatus(status) == .running {
                _ = try? qmp.execute("system_powerdown")
                let deadline = Date().addingTimeInterval(timeout)
                while Date() < deadline, QEMULauncher.isQEMU(pid: pid) {
                    _ = try? qmp.waitForEvent(["SHUTDOWN"], timeout: 1)
                }
            }
        }
        if QEMULauncher.isQEMU(pid: pid), let qmp = try? QMPClient(socketPath: files.qmpSocket, timeout: 3) {
            _ = try? qmp.execute("quit", timeout: 3)
            QEMULauncher.terminate(pid: pid, signal: 0, timeout: 5)
        }
        if QEMULauncher.isQEMU(pid: pid) {
            guard QEMULauncher.terminate(pid: pid, signal: SIGKILL, timeout: 10) else {
                throw WispError(.failed, "QEMU (pid \(pid)) of \(files.directory) did not exit even after SIGKILL")
            }
        }
        InstanceState.repairStale(files)
    }

    /// Removes the instance; a running one only with `force` (it is killed first).
    public func remove(_ name: String, force: Bool) throws {
        let files = store.files(name)
        guard FileManager.default.fileExists(atPath: files.directory) else {
            throw WispError.notFound("no instance named \(name) (see wisp list)")
        }
        let lock = try InstanceLock(path: files.lock, name: name)
        defer { lock.release() }
        if let placement = LibvirtEngine.placement(files) {
            let state = LibvirtEngine.state(placement)
            guard force || state == .stopped else {
                throw WispError(.busy, "instance \(name) is running: stop it first (wisp stop \(name)) or use wisp rm --force \(name)")
            }
            // The domain and its volumes go first: an instance directory without them would
            // be nothing; libvirt objects without the directory would be left behind.
            try LibvirtEngine.remove(placement)
        } else if let pid = QEMULauncher.readPID(files.pidFile), QEMULauncher.isQEMU(pid: pid) {
            guard force else {
                throw WispError(.busy, "instance \(name) is running: stop it first (wisp stop \(name)) or use wisp rm --force \(name)")
            }
            try stopLocked(files, force: true, timeout: 0)
        }
        try store.remove(name)
    }
}
