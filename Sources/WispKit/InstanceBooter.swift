#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore
import Machine
import MetadataService

/// Boots an instance that exists on disk and waits until it is ready: QEMU launched in the
/// background, KVM tried first and abandoned for TCG when the guest shows no sign of life,
/// a progress line from the serial log, readiness = phone_home (first boot) + SSH answers.
public struct InstanceBooter: Sendable {
    public var store: InstanceStore
    public var acceleratorChoice: AcceleratorChoice
    public var timeout: Double
    /// Seconds of serial silence under KVM after which the guest is restarted under TCG.
    public var kvmSignOfLifeSeconds: Double = 8
    public var progress: @Sendable (String) -> Void

    public init(store: InstanceStore, acceleratorChoice: AcceleratorChoice = .auto, timeout: Double = 600,
                progress: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.acceleratorChoice = acceleratorChoice
        self.timeout = timeout
        self.progress = progress
    }

    public struct Readiness: Sendable {
        /// Wait for cloud-init's phone_home on this listener (first boot only).
        public var metadata: MetadataServer?
        public var waitForSSH: Bool

        public init(metadata: MetadataServer?, waitForSSH: Bool) {
            self.metadata = metadata
            self.waitForSSH = waitForSSH
        }
    }

    /// Launches QEMU for `record` (the lock must be held by the caller). Returns the record
    /// as booted (with the accelerator that was used).
    public func launch(_ record: InstanceRecord) throws -> (InstanceRecord, Int32) {
        let files = store.files(record.name)
        InstanceState.repairStale(files)
        let probe = AcceleratorProbe(cacheDirectory: store.paths.cacheHome.path)
        var accelerator: Accelerator
        // KVM runs only guests of the host's own architecture; any other is emulated.
        let guest = record.spec.architecture
        let native = GuestArchitecture.host == guest
        switch acceleratorChoice {
        case .kvm where !native:
            throw WispError.usage("--accel kvm: a \(guest.rawValue) guest cannot run under KVM on this \(GuestArchitecture.host?.rawValue ?? "unknown") host (use --accel tcg or auto)")
        case .auto where !native:
            FileHandle.standardError.write(Data("wisp: \(record.name) is a \(guest.rawValue) guest on a \(GuestArchitecture.host?.rawValue ?? "foreign") host: emulating it with TCG (slower than KVM)\n".utf8))
            accelerator = .tcg
        case .kvm:
            guard probe.kvmDeviceUsable else {
                throw WispError(.unsupported, "--accel kvm: /dev/kvm cannot be opened read-write on this host (use --accel tcg or auto)")
            }
            accelerator = .kvm
        case .tcg: accelerator = .tcg
        case .auto: accelerator = probe.choose()
        }
        var booted = record
        booted.spec.accelerator = accelerator
        guard accelerator == .kvm && acceleratorChoice == .auto else {
            let pid = try start(booted, files: files)
            try store.save(booted)
            return (booted, pid)
        }
        // KVM on trial: QEMU refusing it (some paravirtual hosts fail to set MSRs) or a guest
        // with no serial output in time both mean TCG, said once and remembered.
        var reason: String? = nil
        var pid: Int32 = 0
        do {
            pid = try start(booted, files: files)
            if !waitForSignOfLife(files: files, pid: pid, seconds: kvmSignOfLifeSeconds) {
                QEMULauncher.terminate(pid: pid)
                reason = "the guest showed no sign of life under KVM within \(Int(kvmSignOfLifeSeconds)) s"
            }
        } catch let error as WispError where error.kind == .processFailed {
            reason = "QEMU could not run the guest under KVM (\(error.message.split(separator: "\n").first ?? ""))"
        }
        if let reason {
            InstanceState.repairStale(files)
            probe.remember(.tcg)
            FileHandle.standardError.write(Data("wisp: \(reason); restarting it under TCG (remembered for this host)\n".utf8))
            booted.spec.accelerator = .tcg
            pid = try start(booted, files: files)
        }
        try store.save(booted)
        return (booted, pid)
    }

    /// Launches QEMU for a machine restored rather than booted (`-incoming defer -S`,
    /// `-loadvm TAG`), with the accelerator it was saved under: no KVM trial, since a
    /// restored guest prints nothing on its console to show it lives.
    public func launchRestoring(_ record: InstanceRecord, arguments: [String]) throws -> Int32 {
        let files = store.files(record.name)
        InstanceState.repairStale(files)
        return try start(record, files: files, restoreArguments: arguments)
    }

    private func start(_ record: InstanceRecord, files: InstanceFiles, restoreArguments: [String] = []) throws -> Int32 {
        let board = try Boards.for(record.spec.architecture)
        let executable = try HostQEMU.executable(for: board)
        let spec = try InstanceDiskChains.resolve(record, files: files)
        var commandLine = try QEMUCommandLine(executable: executable, spec: spec, paths: files.runtimePaths,
                                              name: "wisp-\(record.name)", sandbox: HostQEMU.supportsSandbox(executable))
        commandLine.restoreArguments = restoreArguments
        try? AtomicOutput.write(Array((commandLine.shellCommand + "\n").utf8), to: files.qemuCommand, permissions: 0o600)
        // Mark where this boot starts in the (appended) serial log.
        let offset = (try? FileManager.default.attributesOfItem(atPath: files.serialLog)[.size] as? UInt64) ?? 0
        try? AtomicOutput.write(Array(String(offset).utf8), to: files.directory + "/serial.offset", permissions: 0o600)
        // Shared folders: their virtiofsd must listen before QEMU connects while it starts.
        var daemons: [Int32] = []
        if !spec.sharedFolders.isEmpty {
            daemons = try VirtiofsDaemon.find().start(spec.sharedFolders, socketDirectory: files.directory, logPath: files.virtiofsdLog)
        }
        do {
            return try QEMULauncher.launch(commandLine)
        } catch {
            VirtiofsDaemon.terminate(daemons)
            throw error
        }
    }

    /// The serial output of the current boot only.
    public static func currentBootLog(_ files: InstanceFiles) -> String {
        guard let data = FileManager.default.contents(atPath: files.serialLog) else { return "" }
        let offsetText = (try? String(contentsOfFile: files.directory + "/serial.offset", encoding: .utf8)) ?? "0"
        let offset = min(Int(offsetText.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, data.count)
        return String(decoding: data[offset...], as: UTF8.self)
    }

    private func waitForSignOfLife(files: InstanceFiles, pid: Int32, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if !Self.currentBootLog(files).isEmpty { return true }
            if !QEMULauncher.isQEMU(pid: pid) { return true }  // died: reported by the wait
            usleep(200_000)
        }
        return !Self.currentBootLog(files).isEmpty
    }

    /// Waits until the guest is ready, showing the phase. On failure: what happened and the
    /// last serial lines.
    public func waitUntilReady(_ record: InstanceRecord, pid: Int32, readiness: Readiness) throws {
        let files = store.files(record.name)
        let ssh = InstanceSSH(record: record, files: files)
        let start = Date()
        let deadline = start.addingTimeInterval(timeout)
        var lastShown = ""
        var phoneHomeSeen = readiness.metadata == nil
        var sshFailedAt: Date? = nil
        while true {
            let log = Self.currentBootLog(files)
            if let placement = LibvirtEngine.placement(files) {
                let state = LibvirtEngine.state(placement)
                if state == .crashed {
                    throw WispError(.guestFailed, "the guest \(record.name) crashed while booting (libvirt domain \(placement.domain) on \(placement.uri)); last serial lines:\n\(BootPhase.tail(of: log))")
                }
                if state != .running && state != .paused {
                    throw WispError(.engineFailed, "the libvirt domain \(placement.domain) on \(placement.uri) stopped while \(record.name) was booting; last serial lines:\n\(BootPhase.tail(of: log))")
                }
            } else if !QEMULauncher.isQEMU(pid: pid) {
                throw WispError(.engineFailed, "QEMU exited while \(record.name) was booting (see wisp logs \(record.name)); last serial lines:\n\(BootPhase.tail(of: log))")
            }
            if let qmp = try? QMPClient(socketPath: files.qmpSocket, timeout: 2), let status = try? qmp.status(),
               InstanceState.fromQMPStatus(status) == .crashed {
                throw WispError(.guestFailed, "the guest \(record.name) crashed while booting (QEMU status \(status)); last serial lines:\n\(BootPhase.tail(of: log))")
            }
            if !phoneHomeSeen, readiness.metadata?.phoneHomeData != nil { phoneHomeSeen = true }
            var phase = BootPhase.detect(in: log)
            if phoneHomeSeen && readiness.metadata != nil { phase = .ssh }
            let elapsed = Int(Date().timeIntervalSince(start))
            let line = "\(record.name): \(phase) (\(record.spec.accelerator.rawValue), \(elapsed)s)"
            if line != lastShown { progress(line); lastShown = line }
            if phoneHomeSeen && (!readiness.waitForSSH || ssh.probe()) { return }
            // systemd restarts a failed sshd a few times: give it 20 s to come up after all.
            if readiness.waitForSSH, let failure = BootPhase.sshServiceFailure(in: log) {
                if let since = sshFailedAt, Date().timeIntervalSince(since) > 20 {
                    throw WispError(.guestFailed, "the SSH server of \(record.name) failed to start (\(failure)), so Wisp cannot reach it; the VM is still running (wisp logs \(record.name), wisp rm --force \(record.name)); last serial lines:\n\(BootPhase.tail(of: log))")
                }
                if sshFailedAt == nil { sshFailedAt = Date() }
            }
            if Date() > deadline {
                throw WispError(.timedOut, "\(record.name) was not ready after \(Int(timeout)) s (phase: \(phase)\(phoneHomeSeen ? "" : ", cloud-init has not phoned home")); the VM is still running (wisp logs \(record.name), wisp rm --force \(record.name)); last serial lines:\n\(BootPhase.tail(of: log))")
            }
            usleep(phoneHomeSeen ? 500_000 : 300_000)
        }
    }
}
