import ArgumentParser
import Foundation
import Machine
import WispKit

struct StartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Boot stopped instances and wait until SSH answers (a console-only ISO instance: until QEMU runs).",
        discussion: """
        A suspended instance (wisp suspend) is restored from its saved memory in seconds, \
        its clock set; if that state cannot be used it boots cold, with a note. \
        A stopped instance is one that was stopped, powered itself off, or whose QEMU died \
        (killed, or the host rebooted): its overlay is kept and boots again. An instance that \
        is already running is left as it is, with a note. The forwarded ports are checked \
        first: one another instance or program holds is refused by name.

        Examples:
          wisp start web
          wisp start web db --timeout 300
          wisp start web --detach      # return as soon as QEMU runs
          wisp suspend web && wisp start web   # resumed, not booted
        """)

    @Argument(help: "Instance names.") var names: [String]
    @Option(help: "auto (KVM if it works, else TCG), kvm or tcg (default: the config file's accelerator, else auto).") var accel: AcceleratorChoice?
    @Option(help: "Seconds to wait for the guest to be ready.") var timeout: Double = 900
    @Flag(help: "Return as soon as QEMU runs, without waiting for SSH.") var detach = false

    func run() async throws {
        let accelerator = try accel ?? WispConfig.load().accelerator ?? .auto
        try await Self.startEach(names, accelerator: accelerator, timeout: timeout, detach: detach)
    }

    static func startEach(_ names: [String], accelerator: AcceleratorChoice, timeout: Double, detach: Bool) async throws {
        let store = InstanceStore()
        let booter = InstanceBooter(store: store, acceleratorChoice: accelerator, timeout: timeout, progress: RunProgress.report)
        try await EachInstance.run(names) { name in
            _ = try store.load(name)
            if InstanceState.probe(store.files(name)).state == .running {
                FileOutput.standardError("wisp: \(name) is already running\n")
                return
            }
            do {
                let started = Date()
                let (record, resume) = try InstanceController(store: store).startOrResume(name, booter: booter, waitForReady: !detach,
                                                                                          notice: { FileOutput.standardError($0) })
                RunProgress.finish()
                let waited = resume.map { if case .resumed = $0 { return true } else { return !detach } } ?? !detach
                var line = ReadyLine.text(record, elapsed: waited ? Date().timeIntervalSince(started) : nil, detached: !waited)
                if case .resumed(_, let phases)? = resume {
                    // Where the time went: QEMU up, state loaded and checked, SSH login.
                    line = line.replacingOccurrences(of: " is ready in ", with: " is resumed and ready in ")
                        .replacingOccurrences(of: " (\(record.spec.accelerator.rawValue))",
                                              with: String(format: " (%@; QEMU up %.2f s, state loaded %.2f s, SSH %.2f s)",
                                                           record.spec.accelerator.rawValue, phases.qemuStarted,
                                                           phases.stateLoaded - phases.qemuStarted, phases.ready - phases.stateLoaded))
                }
                FileOutput.standardError(line)
            } catch {
                RunProgress.finish()
                throw error
            }
        }
    }
}
