#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore

/// A whole machine's state (memory and devices) written to or read from a file through
/// QEMU's migration stream. QEMU 7.2 has no `file:` URI, and the sandboxed QEMU Wisp
/// starts may not spawn the `exec:` helper, so the file is opened here and handed to QEMU
/// over the QMP socket (`getfd`, then the `fd:` URI).
public enum QMPMigration {
    /// The name the descriptor gets inside QEMU.
    static let descriptorName = "wisp-state"

    /// Stops the guest and writes its state to `path` (created owner-only, replaced if it
    /// exists). Returns the bytes written. The guest stays paused; the disks are flushed
    /// and inactive, so the caller may `quit` and the disks match the state.
    @discardableResult
    public static func save(_ qmp: QMPClient, to path: String, timeout: Double = 600) throws -> UInt64 {
        try qmp.execute("stop")
        // The default bandwidth limit (32 MiB/s) would make a 300 MB guest take ten
        // seconds; a file takes what the disk gives. Zero pages cost a flag each.
        try qmp.execute("migrate-set-parameters", arguments: ["max-bandwidth": Int64(1) << 40, "downtime-limit": 300_000])
        try handOver(path, flags: O_WRONLY | O_CREAT | O_TRUNC, to: qmp)
        try qmp.execute("migrate", arguments: ["uri": "fd:\(descriptorName)"])
        try waitForMigration(qmp, what: "saving the machine state to \(path)", timeout: timeout)
        var info = stat()
        guard stat(path, &info) == 0 else { throw WispError.posix("stat", path, errno: errno) }
        return UInt64(info.st_size)
    }

    /// Loads the state at `path` into a QEMU started with `-incoming defer`; it stays paused
    /// if QEMU was started with `-S` (the caller decides when it runs).
    public static func load(_ qmp: QMPClient, from path: String, timeout: Double = 600) throws {
        try handOver(path, flags: O_RDONLY, to: qmp)
        try qmp.execute("migrate-incoming", arguments: ["uri": "fd:\(descriptorName)"])
        try waitForMigration(qmp, what: "loading the machine state from \(path)", timeout: timeout)
    }

    /// Opens `path` (owner-only when created) and passes the descriptor to QEMU under
    /// `descriptorName`; Wisp's copy is closed either way.
    static func handOver(_ path: String, flags: Int32, to qmp: QMPClient) throws {
        let fd = open(path, flags | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw WispError.posix("open", path, errno: errno) }
        defer { close(fd) }
        try qmp.execute("getfd", arguments: ["fdname": descriptorName], passing: fd)
    }

    /// Polls `query-migrate` until it completes; a failure carries QEMU's reason.
    static func waitForMigration(_ qmp: QMPClient, what: String, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let info = try qmp.execute("query-migrate")
            switch info["status"]?.string {
            case "completed"?:
                return
            case "failed"?, "cancelled"?:
                let reason = info["error-desc"]?.string ?? "no reason given"
                throw WispError(.engineFailed, "QEMU failed \(what): \(reason)")
            default:
                guard Date() < deadline else {
                    _ = try? qmp.execute("migrate_cancel")
                    throw WispError.timedOut("\(what) did not finish within \(Int(timeout)) s")
                }
                usleep(10_000)
            }
        }
    }
}
