import ArgumentParser
import WispCore
import WispKit

struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "console", abstract: "Attach to an instance's serial console (Ctrl-] detaches).")

    @Argument(help: "Instance name.") var name: String

    func run() async throws {
        let store = InstanceStore()
        _ = try store.load(name)
        if let placement = LibvirtEngine.placement(store.files(name)) {
            throw WispError(.unsupported, "\(name) is a libvirt domain: attach with virsh -c \(placement.uri) console \(placement.domain) (wisp logs \(name) shows its serial output)")
        }
        try SerialConsole.attach(store.files(name), name: name)
    }
}
