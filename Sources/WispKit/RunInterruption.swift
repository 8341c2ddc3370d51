#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import WispCore

/// What `wisp run` does when it is interrupted (Ctrl-C, or SIGTERM/SIGHUP from a CI runner
/// cancelling a job) while it boots the guest, or while `--rm -- CMD` runs: the instance it
/// made is never left booting unattended. QEMU is stopped; with `--rm` the instance is
/// removed, otherwise it stays, stopped, for `wisp start` / `wisp logs`. A half-made instance
/// (no instance.json yet) is removed either way. Once the guest is ready and the instance is
/// the user's, `disarm()` gives the signals back their default meaning.
///
/// The handler works on the instance directly rather than through `InstanceController`: during
/// the boot this process holds the instance's lock, which the controller would wait for.
public final class RunInterruption: @unchecked Sendable {
    private let store: InstanceStore
    private let removeOnInterrupt: Bool
    private let instance = LockedValue<String?>(nil)
    private let fired = LockedValue(false)
    private var sources: [any DispatchSourceSignal] = []
    private static let signals = [SIGINT, SIGTERM, SIGHUP]

    public init(store: InstanceStore, removeOnInterrupt: Bool) {
        self.store = store
        self.removeOnInterrupt = removeOnInterrupt
    }

    /// The instance this run claimed; from now on an interruption stops (or removes) it.
    public func track(_ name: String) {
        instance.withLock { $0 = name }
    }

    /// The instance claimed so far, if any.
    public var trackedInstance: String? { instance.withLock { $0 } }

    /// Takes over SIGINT, SIGTERM and SIGHUP until `disarm()`.
    public func install() {
        for number in Self.signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in handle(number) }
            source.resume()
            sources.append(source)
        }
    }

    /// When an interruption is being handled, never returns: the handler is stopping QEMU,
    /// which the boot wait sees as QEMU dying, and the process must end with the handler's
    /// status and message, not that error's.
    public func parkIfInterrupted() {
        guard fired.withLock({ $0 }) else { return }
        while true { pause() }
    }

    /// Back to the default actions (and children spawned from now on no longer inherit an
    /// ignored SIGINT/SIGTERM/SIGHUP).
    public func disarm() {
        for source in sources { source.cancel() }
        sources.removeAll()
        for number in Self.signals { signal(number, SIG_DFL) }
    }

    private func handle(_ number: Int32) {
        // SIGINT and SIGTERM have separate sources: only the first one acts.
        guard fired.withLock({ done in defer { done = true }; return !done }) else { return }
        // Whatever the clean-up below meets, the process ends: an interrupted run never hangs.
        DispatchQueue.global().asyncAfter(deadline: .now() + 30) { _exit(128 + number) }
        if let name = trackedInstance {
            let files = store.files(name)
            let controller = InstanceController(store: store)
            // A complete instance may be mid-launch: QEMU daemonized but its pid file not
            // written yet. Give the file a moment to appear, then stop what it names.
            for _ in 0..<20 where !FileManager.default.fileExists(atPath: files.pidFile) && FileManager.default.fileExists(atPath: files.record) {
                usleep(100_000)
            }
            try? controller.stopLocked(files, force: true, timeout: 0)
            let halfMade = !FileManager.default.fileExists(atPath: files.record)
            if removeOnInterrupt || halfMade {
                try? store.remove(name)
                report("interrupted: removed \(name)")
            } else {
                report("interrupted: stopped \(name) (wisp start \(name) boots it again, wisp rm \(name) deletes it)")
            }
        }
        // _exit, not exit: other threads (a download, the boot wait) are mid-work, and exit
        // handlers must not run under them.
        _exit(128 + number)
    }

    private func report(_ line: String) {
        let text = Array((line + "\n").utf8)
        _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}
