import ArgumentParser
import WispKit

struct RemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove instances (their overlay, keys, seed and logs; the base image stays).",
        discussion: """
        Examples:
          wisp rm web
          wisp rm -f web db          # running ones too (QEMU is killed)
        """)

    @Argument(help: "Instance names.") var names: [String]
    @Flag(name: [.short, .long], help: "Remove running instances too (QEMU is killed).") var force = false

    func run() async throws {
        let controller = InstanceController()
        try await EachInstance.run(names) { name in try controller.remove(name, force: force) }
    }
}
