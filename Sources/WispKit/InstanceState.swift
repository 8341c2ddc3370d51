import Foundation
import Machine

/// The state of an instance as seen from outside, derived every time from the pid file,
/// the process table and QMP (never stored, so never stale).
public enum InstanceState: String, Sendable, Codable, Equatable {
    case running, paused, crashed, stopped
    /// No QEMU runs, and the guest's memory and devices are saved beside its disk
    /// (`wisp suspend`); `wisp start` or `wisp resume` restores it.
    case suspended
    /// The directory exists but has no valid instance.json: an interrupted `wisp run`.
    case incomplete

    /// Maps QEMU's `query-status` answer to an instance state.
    public static func fromQMPStatus(_ status: String) -> InstanceState {
        switch status {
        case "guest-panicked", "internal-error", "io-error": .crashed
        case "shutdown": .stopped
        case "paused", "suspended", "prelaunch", "inmigrate", "postmigrate", "finish-migrate", "save-vm", "restore-vm", "watchdog", "debug", "colo": .paused
        default: .running
        }
    }

    /// Inspects a live instance directory. A pid file whose process is gone (kill -9, host
    /// reboot) means stopped, and the leftovers are cleaned by `repairStale`.
    public static func probe(_ files: InstanceFiles) -> (state: InstanceState, pid: Int32?) {
        guard FileManager.default.fileExists(atPath: files.record) else { return (.incomplete, nil) }
        // A libvirt-run instance: the daemon knows its state (and its QEMU is not ours).
        if let placement = LibvirtEngine.placement(files) { return (LibvirtEngine.state(placement), nil) }
        guard let pid = QEMULauncher.readPID(files.pidFile), QEMULauncher.isQEMU(pid: pid) else {
            return (FileManager.default.fileExists(atPath: files.savedStateDescription) ? .suspended : .stopped, nil)
        }
        guard let qmp = try? QMPClient(socketPath: files.qmpSocket, timeout: 3), let status = try? qmp.status() else {
            // Alive but not answering QMP (busy starting, or another client holds it).
            return (.running, pid)
        }
        return (fromQMPStatus(status), pid)
    }

    /// Removes runtime files a dead QEMU left behind (pid file, sockets).
    public static func repairStale(_ files: InstanceFiles) {
        if let pid = QEMULauncher.readPID(files.pidFile), QEMULauncher.isQEMU(pid: pid) { return }
        for path in [files.pidFile, files.qmpSocket, files.consoleSocket] {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}
