import ArgumentParser
import Foundation
import Machine
import WispKit

struct StartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Boot a stopped instance and wait until SSH answers.",
        discussion: """
        A stopped instance is one that was stopped, powered itself off, or whose QEMU died \
        (killed, or the host rebooted): its overlay is kept and boots again.

        Examples:
          wisp start web
          wisp start web --detach      # return as soon as QEMU runs
        """)

    @Argument(help: "Instance name.") var name: String
    @Option(help: "auto (KVM if it works, else TCG), kvm or tcg.") var accel: AcceleratorChoice = .auto
    @Option(help: "Seconds to wait for the guest to be ready.") var timeout: Double = 900
    @Flag(help: "Return as soon as QEMU runs, without waiting for SSH.") var detach = false

    func run() async throws {
        let store = InstanceStore()
        let booter = InstanceBooter(store: store, acceleratorChoice: accel, timeout: timeout, progress: RunProgress.report)
        do {
            let record = try InstanceController(store: store).start(name, booter: booter, waitForReady: !detach)
            RunProgress.finish()
            let state = detach ? "is starting" : "is ready"
            FileHandle.standardError.write(Data("\(name) \(state) (\(record.spec.accelerator.rawValue)): wisp ssh \(name)\n".utf8))
        } catch {
            RunProgress.finish()
            throw error
        }
    }
}
