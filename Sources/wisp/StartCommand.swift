import ArgumentParser
import Foundation
import Machine
import WispKit

struct StartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Boot a stopped instance and wait until SSH answers.")

    @Argument(help: "Instance name.") var name: String
    @Option(help: "auto (KVM if it works, else TCG), kvm or tcg.") var accel: AcceleratorChoice = .auto
    @Option(help: "Seconds to wait for the guest to be ready.") var timeout: Double = 900

    func run() async throws {
        let store = InstanceStore()
        let booter = InstanceBooter(store: store, acceleratorChoice: accel, timeout: timeout, progress: RunProgress.report)
        do {
            let record = try InstanceController(store: store).start(name, booter: booter)
            RunProgress.finish()
            FileHandle.standardError.write(Data("\(name) is ready (\(record.spec.accelerator.rawValue)): wisp ssh \(name)\n".utf8))
        } catch {
            RunProgress.finish()
            throw error
        }
    }
}
