import ArgumentParser
import WispKit

struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "console", abstract: "Attach to an instance's serial console (Ctrl-] detaches).")

    @Argument(help: "Instance name.") var name: String

    func run() async throws {
        let store = InstanceStore()
        _ = try store.load(name)
        try SerialConsole.attach(store.files(name), name: name)
    }
}
