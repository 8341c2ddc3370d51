#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import WispCore

/// What `wisp run` does when it is interrupted (Ctrl-C, or SIGTERM/SIGHUP from a CI runner
/// cancelling a job): the instance it made is never left booting unattended. QEMU is stopped;
/// with `--rm` the instance is removed too, otherwise it stays for `wisp start` / `wisp logs`.
/// This process holds the instance lock while it runs, so the handler works on the instance
/// directly instead of through the lock-taking `InstanceController` entry points.
public final class RunInterruption: @unchecked Sendable {
    private let store: InstanceStore
    private let removeOnInterrupt: Bool
    private let instance = LockedValue<String?>(nil)
    private var sources: [any DispatchSourceSignal] = []

    public init(store: InstanceStore, removeOnInterrupt: Bool) {
        self.store = store
        self.removeOnInterrupt = removeOnInterrupt
    }

    /// The instance this run created; from now on an interruption stops (or removes) it.
    public func track(_ name: String) {
        instance.withLock { $0 = name }
    }

    /// Takes over SIGINT, SIGTERM and SIGHUP for the rest of the process.
    public func install() {
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in handle(number) }
            source.resume()
            sources.append(source)
        }
    }

    private func handle(_ number: Int32) -> Never {
        let name = instance.withLock { $0 }
        if let name {
            let files = store.files(name)
            try? InstanceController(store: store).stopLocked(files, force: true, timeout: 0)
            if removeOnInterrupt {
                try? store.remove(name)
                report("interrupted: removed \(name)")
            } else {
                report("interrupted: stopped \(name) (wisp start \(name) boots it again, wisp rm \(name) deletes it)")
            }
        }
        exit(128 + number)
    }

    private func report(_ line: String) {
        let text = Array((line + "\n").utf8)
        _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}
