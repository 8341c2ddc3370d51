import ArgumentParser
import Foundation
import Machine
import WispKit

struct StartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Boot stopped instances and wait until SSH answers.",
        discussion: """
        An instance that is already running is left as it is, with a note. The forwarded ports \
        are checked first: one another instance or program holds is refused by name.

        Examples:
          wisp start web
          wisp start web db --timeout 300
        """)

    @Argument(help: "Instance names.") var names: [String]
    @Option(help: "auto (KVM if it works, else TCG), kvm or tcg (default: the config file's accelerator, else auto).") var accel: AcceleratorChoice?
    @Option(help: "Seconds to wait for the guest to be ready.") var timeout: Double = 900

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
                let record = try InstanceController(store: store).start(name, booter: booter)
                RunProgress.finish()
                FileOutput.standardError(ReadyLine.text(record, elapsed: Date().timeIntervalSince(started)))
            } catch {
                RunProgress.finish()
                throw error
            }
        }
    }
}
