import ArgumentParser
import Foundation
import Machine
import WispCore
import WispKit

struct SuspendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suspend", abstract: "Save running instances' memory beside their disk and stop QEMU.",
        discussion: """
        The guest is asked to flush its writes (sync over SSH), then its memory and devices are written to suspend.state in the instance \
        directory (owner-only, read-only, its SHA-256, QEMU version and machine type \
        recorded in suspend.json) and QEMU stops; wisp list shows it suspended. wisp start \
        or wisp resume restores it in seconds and sets the guest's clock. A state that is \
        missing, truncated, changed or from another QEMU is discarded with a one-line note \
        and the instance boots cold from its disk. wisp stop of a suspended instance \
        discards the state; wisp rm removes it. Instances with shared folders (--mount) \
        cannot be suspended.

        Examples:
          wisp suspend web
          wisp resume web            # or: wisp start web
        """)

    @Argument(help: "Instance names.") var names: [String]

    func run() async throws {
        let store = InstanceStore()
        try await EachInstance.run(names) { name in
            let started = Date()
            let saved = try InstanceSuspender(store: store).suspend(name, notice: { FileOutput.standardError($0) })
            FileOutput.standardError(String(format: "%@ is suspended in %.1f s (%@ of state)\n", name,
                                            Date().timeIntervalSince(started), ByteSize.format(saved.size)))
        }
    }
}

struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Restore suspended instances and wait until SSH answers.",
        discussion: """
        The same as wisp start: a suspended instance is restored from its saved state (its \
        clock set over SSH), a stopped one boots. Ready means SSH answers with the host key \
        Wisp generated for the instance.

        Examples:
          wisp suspend web && wisp resume web
        """)

    @Argument(help: "Instance names.") var names: [String]
    @Option(help: "Seconds to wait for the guest to be ready.") var timeout: Double = 900
    @Option(help: "For a cold boot (a stopped instance, or an unusable state): auto, kvm or tcg (default: the config file's accelerator, else auto).")
    var accel: AcceleratorChoice?

    func run() async throws {
        try await StartCommand.startEach(names, accelerator: try accel ?? WispConfig.load().accelerator ?? .auto, timeout: timeout, detach: false)
    }
}
