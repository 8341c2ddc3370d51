import ArgumentParser
import Foundation
import Machine
import WispKit

struct StartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Boot stopped instances and wait until SSH answers (a console-only ISO instance: until QEMU runs).",
        discussion: """
        A stopped instance is one that was stopped, powered itself off, or whose QEMU died \
        (killed, or the host rebooted): its overlay is kept and boots again. An instance that \
        is already running is left as it is, with a note. The forwarded ports are checked \
        first: one another instance or program holds is refused by name.

        Examples:
          wisp start web
          wisp start web db --timeout 300
          wisp start web --detach      # return as soon as QEMU runs
        """)

    @Argument(help: "Instance names.") var names: [String]
    @Option(help: "auto (KVM if it works, else TCG), kvm or tcg (default: the config file's accelerator, else auto).") var accel: AcceleratorChoice?
    @Option(help: "Seconds to wait for the guest to be ready.") var timeout: Double = 900
    @Flag(help: "Return as soon as QEMU runs, without waiting for SSH.") var detach = false

    func run() async throws {
        let store = InstanceStore()
        let accelerator = try accel ?? WispConfig.load().accelerator ?? .auto
        let booter = InstanceBooter(store: store, acceleratorChoice: accelerator, timeout: timeout, progress: RunProgress.report)
        try await EachInstance.run(names) { name in
            _ = try store.load(name)
            if InstanceState.probe(store.files(name)).state == .running {
                FileOutput.standardError("wisp: \(name) is already running\n")
                return
            }
            do {
                let started = Date()
                let record = try InstanceController(store: store).start(name, booter: booter, waitForReady: !detach)
                RunProgress.finish()
                FileOutput.standardError(ReadyLine.text(record, elapsed: detach ? nil : Date().timeIntervalSince(started), detached: detach))
            } catch {
                RunProgress.finish()
                throw error
            }
        }
    }
}
