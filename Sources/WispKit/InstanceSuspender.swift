#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Machine
import WispCore

/// `wisp suspend` and the resume half of `wisp start`/`wisp resume`: a running guest's
/// memory and devices saved beside its disk through QEMU's migration stream, QEMU stopped,
/// and later the same QEMU started with `-incoming defer -S`, the state loaded, checked and
/// run. The guest's clock, which stood still, is set over SSH in the readiness login.
public struct InstanceSuspender: Sendable {
    public var store: InstanceStore

    public init(store: InstanceStore = InstanceStore()) { self.store = store }

    /// What a resume did.
    public enum ResumeOutcome: Sendable, Equatable {
        /// Restored from the saved state; `clock` says whether its clock was set.
        case resumed(clock: InstanceSSH.ClockSetting, phases: ResumePhases)
        /// The state was not usable: it was discarded and the guest booted cold.
        case bootedCold(SavedState.Unusable)
    }

    /// Where a resume's time went, in seconds from its start.
    public struct ResumePhases: Sendable, Equatable {
        /// QEMU answering on QMP.
        public var qemuStarted: Double
        /// The state loaded and its SHA-256 checked; the guest runs from here.
        public var stateLoaded: Double
        /// The SSH login that found it ready and set its clock.
        public var ready: Double
    }

    static func shape(of record: InstanceRecord) throws -> String {
        let board = try Boards.for(record.spec.architecture)
        return SavedState.shape(architecture: record.spec.architecture.rawValue, machine: board.machineArgument,
                                accelerator: record.spec.accelerator.rawValue, cpus: record.spec.cpus, memoryBytes: record.spec.memoryBytes)
    }

    /// Saves the running guest's state and stops QEMU. On any failure before the state is
    /// complete, the partial file goes and the guest runs on.
    @discardableResult
    /// `flushGuest` false skips the guest's `sync` over SSH (a machine without a guest OS).
    public func suspend(_ name: String, flushGuest: Bool = true,
                        notice: @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) throws -> SavedState {
        let record = try store.load(name)
        let files = store.files(name)
        let lock = try InstanceLock(path: files.lock, name: name)
        defer { lock.release() }
        if LibvirtEngine.placement(files) != nil {
            throw LibvirtEngine.ownsDisk(name, verb: "wisp suspend")
        }
        let (state, pid) = InstanceState.probe(files)
        guard state == .running || state == .paused, let pid else {
            throw WispError(.busy, "instance \(name) is \(state.rawValue): only a running instance can be suspended")
        }
        if !record.spec.sharedFolders.isEmpty {
            // vhost-user-fs devices block QEMU's migration: their state lives in virtiofsd.
            throw WispError(.unsupported, "instance \(name) has shared folders (--mount), whose state QEMU cannot save: wisp stop \(name) instead")
        }
        // The guest's own dirty pages reach the disk first: if the state is ever unusable,
        // the cold boot then finds on disk what the guest had written (a power cut would not).
        // Best effort: a guest SSH cannot reach is saved all the same.
        // A console-only guest (a live ISO without cloud-init) has no SSH login to flush through.
        if flushGuest, !record.consoleOnly, !InstanceSSH(record: record, files: files).probe("sync", limit: 30) {
            notice("wisp: \(name): could not reach the guest over SSH to flush its writes first; saving it as it is\n")
        }
        let qmp = try QMPClient(socketPath: files.qmpSocket, timeout: 10)
        let partial = files.savedState + ".partial"
        try? FileManager.default.removeItem(atPath: partial)
        let saved: SavedState
        do {
            let size = try QMPMigration.save(qmp, to: partial)
            let digest = try SavedState.sha256(of: partial)
            saved = SavedState(qemuVersion: qmp.qemuVersion, machine: try Boards.for(record.spec.architecture).machineArgument,
                               architecture: record.spec.architecture.rawValue, accelerator: record.spec.accelerator.rawValue,
                               cpus: record.spec.cpus, memoryBytes: record.spec.memoryBytes, size: size, sha256: digest)
            // Read-only once made: a later change is a sign of damage, and is refused.
            guard chmod(partial, 0o400) == 0 else { throw WispError.posix("chmod", partial, errno: errno) }
            guard rename(partial, files.savedState) == 0 else { throw WispError.posix("rename", files.savedState, errno: errno) }
            try AtomicOutput.write(try saved.encoded(), to: files.savedStateDescription, permissions: 0o600)
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            try? FileManager.default.removeItem(atPath: files.savedState)
            // The guest was paused for the save; it goes on as before.
            _ = try? qmp.execute("cont")
            throw error
        }
        // The disks were flushed and released when the migration completed.
        _ = try? qmp.execute("quit", timeout: 5)
        if !QEMULauncher.terminate(pid: pid, signal: 0, timeout: 10) {
            QEMULauncher.terminate(pid: pid, signal: SIGKILL, timeout: 10)
        }
        InstanceState.repairStale(files)
        return saved
    }

    /// Removes a suspended guest's state (`wisp stop` of a suspended instance, a state
    /// that cannot be used, or one just loaded: the disk moves on from here).
    public static func discardState(_ files: InstanceFiles) {
        try? FileManager.default.removeItem(atPath: files.savedStateDescription)
        try? FileManager.default.removeItem(atPath: files.savedState)
        try? FileManager.default.removeItem(atPath: files.savedState + ".partial")
    }

    /// Restores a suspended instance (lock held by the caller, state `.suspended`) and waits
    /// until SSH answers with its host key, setting its clock. A state that cannot be used
    /// is discarded, and `coldBoot` is called after `notice` said why in one line.
    func resume(_ record: InstanceRecord, booter: InstanceBooter, timeout: Double,
                notice: @Sendable (String) -> Void, coldBoot: () throws -> InstanceRecord) throws -> (InstanceRecord, ResumeOutcome) {
        let files = store.files(record.name)
        func fallBack(_ why: SavedState.Unusable) throws -> (InstanceRecord, ResumeOutcome) {
            InstanceSuspender.discardState(files)
            notice("wisp: \(record.name): not resuming: \(why); booting it cold (the disk is kept)\n")
            return (try coldBoot(), .bootedCold(why))
        }
        let saved: SavedState
        switch SavedState.check(statePath: files.savedState, descriptionPath: files.savedStateDescription,
                                expectedShape: try Self.shape(of: record)) {
        case .failure(let why): return try fallBack(why)
        case .success(let s): saved = s
        }
        // The checksum is read while QEMU loads the same file (from the page cache); the
        // guest stays paused (-S) until both are done.
        let started = Date()
        var phases = ResumePhases(qemuStarted: 0, stateLoaded: 0, ready: 0)
        let pid: Int32
        switch try SavedStateLoader.load(saved, from: files.savedState, into: record, files: files, booter: booter,
                                         timeout: timeout, started: started) {
        case .unusable(let why): return try fallBack(why)
        case .stalled(let error):
            throw WispError(error.kind, "\(record.name): the saved state did not finish loading (\(error.message)); it is kept: wisp start \(record.name) tries again, wisp stop \(record.name) discards it and the next start boots cold")
        case .running(let running, let qemuStarted, let stateLoaded):
            pid = running
            phases.qemuStarted = qemuStarted
            phases.stateLoaded = stateLoaded
        }
        // Running: from here on the disk moves past the saved memory, which must never load again.
        InstanceSuspender.discardState(files)
        // A console-only guest runs again with no login to wait for (its way in is the console).
        let clock = record.consoleOnly ? .noLogin : try waitUntilAnswering(record, pid: pid, timeout: timeout)
        if clock == .refused {
            notice("wisp: \(record.name): could not set the guest's clock (sudo date refused); it is behind by the time it was suspended\n")
        }
        phases.ready = Date().timeIntervalSince(started)
        return (record, .resumed(clock: clock, phases: phases))
    }

    /// SSH logins until one answers with the instance's host key (and sets the clock).
    func waitUntilAnswering(_ record: InstanceRecord, pid: Int32, timeout: Double) throws -> InstanceSSH.ClockSetting {
        let files = store.files(record.name)
        let ssh = InstanceSSH(record: record, files: files)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let clock = ssh.probeSettingClock() { return clock }
            guard QEMULauncher.isQEMU(pid: pid) else {
                throw WispError(.engineFailed, "QEMU exited while \(record.name) was resuming (see \(files.qemuLog))")
            }
            guard Date() < deadline else {
                throw WispError.timedOut("\(record.name) was resumed but SSH did not answer within \(Int(timeout)) s; the VM is still running (wisp logs \(record.name), wisp stop \(record.name))")
            }
            usleep(100_000)
        }
    }
}
