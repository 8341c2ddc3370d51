import ArgumentParser
import WispKit

struct RemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove instances (their overlay, keys, seed and logs; the base image stays).")

    @Argument(help: "Instance names.") var names: [String]
    @Flag(name: [.short, .long], help: "Remove running instances too (QEMU is killed).") var force = false

    func run() async throws {
        for name in names { try InstanceController().remove(name, force: force) }
    }
}
