#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import WispCore
import WispKit

struct Wisp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wisp",
        abstract: "Boot cloud images as local VMs, and read, write and convert disk images.",
        discussion: """
        Exit status: 0 on success; 1 when the work failed; 64 for a usage error (a bad option \
        or value, checked before any work); `wisp ssh` and `wisp run -- CMD` exit with the \
        guest command's status; `wisp image check` exits 2 for corruption and 3 for leaks, \
        as qemu-img does.
        """,
        version: "0.1.0",
        subcommands: [
            ImageCommand.self, ImagesCommand.self,
            InspectCommand.self,
            KernelCommand.self,
            FSCommand.self,
            SeedCommand.self,
            RunCommand.self, ListCommand.self, InfoCommand.self, SSHCommand.self, ShellCommand.self, ExecCommand.self,
            StopCommand.self, StartCommand.self, RemoveCommand.self, ConsoleCommand.self, LogsCommand.self,
            CopyCommand.self, PortCommand.self, ConfigCommand.self, ExportCommand.self,
            SuspendCommand.self, ResumeCommand.self, SnapshotCommand.self,
        ]
    )
}

/// The process entry point: ArgumentParser's parsing and dispatch, with Wisp's own errors
/// printed as one sentence and mapped to the documented exit statuses.
@main
enum WispMain {
    static func main() async {
        if let sentence = CommandSuggestion.unknownCommand(Array(CommandLine.arguments.dropFirst())) {
            FileOutput.standardError("wisp: \(sentence)\n")
            exit(ExitStatus.usage)
        }
        do {
            var command = try Wisp.parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            ErrorReport.print(error)
            exit(ErrorReport.status(error))
        }
    }
}

/// The exit statuses `wisp` documents (README "Exit status"): scripts may rely on them.
enum ExitStatus {
    static let failure: Int32 = 1
    /// EX_USAGE, the status ArgumentParser gives its own validation errors.
    static let usage: Int32 = 64

    static func of(_ error: WispError) -> Int32 {
        error.kind == .usage ? usage : failure
    }
}
