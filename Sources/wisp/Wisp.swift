import ArgumentParser
import WispKit

@main
struct Wisp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wisp",
        abstract: "Boot cloud images as local VMs, and read, write and convert disk images.",
        version: "0.1.0",
        subcommands: [
            ImageCommand.self,
            InspectCommand.self,
            KernelCommand.self,
            FSCommand.self,
            SeedCommand.self,
            RunCommand.self, ListCommand.self, SSHCommand.self, StopCommand.self, StartCommand.self,
            RemoveCommand.self, ConsoleCommand.self, LogsCommand.self,
        ]
    )
}
