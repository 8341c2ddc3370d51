import ArgumentParser
import WispKit

struct StopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Shut an instance down (ACPI power button; quit after a timeout).")

    @Argument(help: "Instance names.") var names: [String]
    @Flag(help: "Quit QEMU at once instead of asking the guest to shut down.") var force = false
    @Option(help: "Seconds to wait for the guest to power off before quitting QEMU.") var timeout: Double = 90

    func run() async throws {
        for name in names { try InstanceController().stop(name, force: force, timeout: timeout) }
    }
}
