import ArgumentParser
import WispKit

struct StopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Shut instances down (ACPI power button; quit after a timeout).",
        discussion: """
        An instance that is already stopped is left as it is, with a note. A suspended \
        instance's saved memory state is discarded (said so): its disk stays, and its next \
        start is a cold boot.

        Examples:
          wisp stop web
          wisp stop -f web db        # quit QEMU at once
        """)

    @Argument(help: "Instance names.") var names: [String]
    @Flag(name: [.short, .long], help: "Quit QEMU at once instead of asking the guest to shut down.") var force = false
    @Option(help: "Seconds to wait for the guest to power off before quitting QEMU.") var timeout: Double = 90

    func run() async throws {
        let store = InstanceStore()
        try await EachInstance.run(names) { name in
            _ = try store.load(name)
            if InstanceState.probe(store.files(name)).state == .stopped {
                FileOutput.standardError("wisp: \(name) is already stopped\n")
                return
            }
            if try InstanceController(store: store).stop(name, force: force, timeout: timeout) == .discardedSavedState {
                FileOutput.standardError("wisp: \(name) was suspended: its saved memory state is discarded (the disk is kept; wisp start boots it cold)\n")
            }
        }
    }
}
