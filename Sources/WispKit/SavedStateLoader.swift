#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Machine
import WispCore

/// A saved machine state (`SavedState`, already checked for shape and mode) loaded into a
/// QEMU started for it with `-incoming defer -S`: the state's SHA-256 is computed on a thread
/// of its own while QEMU reads the same file, and the guest runs (`cont`) only when the
/// stream loaded and the checksum matched. Used by a resume (`InstanceSuspender`) and a warm
/// clone (`WarmClone`), which differ only in what they do with an unusable state.
enum SavedStateLoader {
    enum Outcome {
        /// The guest runs; times in seconds from `started`.
        case running(pid: Int32, qemuStarted: Double, stateLoaded: Double)
        /// The state's fault (another QEMU, QEMU refused the stream, the checksum): QEMU
        /// was stopped, and the state must never load again.
        case unusable(SavedState.Unusable)
        /// The load did not finish for a reason that says nothing about the state (a monitor
        /// that stalled on a loaded host, the timeout): QEMU was stopped.
        case stalled(WispError)
    }

    /// Any error thrown (QEMU could not start, its monitor did not answer) leaves no QEMU.
    static func load(_ saved: SavedState, from statePath: String, into record: InstanceRecord, files: InstanceFiles,
                     booter: InstanceBooter, timeout: Double, started: Date) throws -> Outcome {
        let checksum = LockedValue<SavedState.Unusable??>(nil)
        let group = DispatchGroup()
        group.enter()
        // A thread of its own: the global queue's few threads may all be blocked on a loaded
        // host, and the group.wait() below would then wait for a block that never runs.
        Thread {
            checksum.withLock { $0 = .some(saved.verifyChecksum(of: statePath)) }
            group.leave()
        }.start()
        let pid: Int32
        do {
            pid = try booter.launchRestoring(record, arguments: ["-incoming", "defer", "-S"])
        } catch {
            group.wait()
            throw error
        }
        let qemuStarted = Date().timeIntervalSince(started)
        // Every way out below waits for the checksum first (the thread reads the file).
        func stopQEMU() {
            group.wait()
            QEMULauncher.terminate(pid: pid, signal: SIGKILL, timeout: 10)
            InstanceState.repairStale(files)
        }
        do {
            let qmp = try QMPClient(socketPath: files.qmpSocket, timeout: 10)
            if let why = saved.check(runningQEMU: qmp.qemuVersion) {
                stopQEMU()
                return .unusable(why)
            }
            do {
                try QMPMigration.load(qmp, from: statePath, timeout: max(timeout, 60))
            } catch let error as WispError {
                // QEMU's verdict on the state: it reported the load failed, or it exited
                // (QEMU 7.2 quits when an incoming stream is malformed).
                let refused = error.kind == .engineFailed || !QEMULauncher.isQEMU(pid: pid)
                stopQEMU()
                return refused ? .unusable(.refusedByQEMU(error.message)) : .stalled(error)
            }
            group.wait()
            if let why = checksum.withLock({ $0 }) ?? nil {
                stopQEMU()
                return .unusable(why)
            }
            try qmp.execute("cont")
            return .running(pid: pid, qemuStarted: qemuStarted, stateLoaded: Date().timeIntervalSince(started))
        } catch {
            stopQEMU()
            throw error
        }
    }
}
