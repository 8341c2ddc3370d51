import ArgumentParser
import Foundation
import WispCore
import WispKit
#if canImport(Glibc)
import Glibc
#endif

struct SSHCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ssh", abstract: "Open a shell in an instance, or run a command there and exit with its code.",
                                                    discussion: "Example: wisp ssh debian-12 -- uname -a")

    @Argument(help: "Instance name.") var name: String
    @Argument(parsing: .postTerminator, help: "Command to run (default: an interactive shell).") var command: [String] = []

    func run() async throws {
        let store = InstanceStore()
        let record = try store.load(name)
        let (state, _) = InstanceState.probe(store.files(name))
        guard state == .running else { throw WispError(.failed, "instance \(name) is \(state.rawValue), not running (wisp start \(name))") }
        let tty = command.isEmpty && isatty(STDIN_FILENO) == 1
        let status = try InstanceSSH(record: record, files: store.files(name)).run(command, tty: tty)
        if status != 0 { throw ExitCode(status) }
    }
}
