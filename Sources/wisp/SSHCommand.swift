import ArgumentParser
import Foundation
import WispCore
import WispKit
#if canImport(Glibc)
import Glibc
#endif

struct SSHCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssh", abstract: "Open a shell in an instance, or run a command there and exit with its code.",
        discussion: """
        One word after -- is a shell command line as it stands; several words are run as \
        given (each quoted for the remote shell).

        Examples:
          wisp ssh debian-12
          wisp ssh debian-12 -- uname -a
          wisp ssh debian-12 -- 'ls /etc | wc -l'
        """)

    @Argument(help: "Instance name.") var name: String
    @Argument(parsing: .postTerminator, help: "Command to run (default: an interactive shell).") var command: [String] = []

    func run() async throws {
        try GuestSession.run(name, command: command)
    }
}

/// `wisp shell NAME`: a login shell, as `multipass shell` and `limactl shell` give.
struct ShellCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shell", abstract: "Open a login shell in an instance.",
        discussion: "Example: wisp shell web")

    @Argument(help: "Instance name.") var name: String

    func run() async throws {
        try GuestSession.run(name, command: [])
    }
}

/// `wisp exec NAME CMD...`: no `--` needed, the words after the name are the command.
struct ExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec", abstract: "Run a command in an instance and exit with its code.",
        discussion: """
        Every word after NAME belongs to the command, options included.

        Examples:
          wisp exec web uname -a
          wisp exec web sh -c 'systemctl is-system-running; exit 3'    # exits 3
        """)

    @Argument(help: "Instance name.") var name: String
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.") var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("give the command to run after the instance name") }
    }

    func run() async throws {
        // `wisp exec web -- ls`: the separator is taken as the habit it is.
        try GuestSession.run(name, command: command.first == "--" ? Array(command.dropFirst()) : command, forceArgv: true)
    }
}

/// The SSH session the three verbs share: a running instance, its key and host key.
enum GuestSession {
    static func run(_ name: String, command: [String], forceArgv: Bool = false) throws {
        let store = InstanceStore()
        let record = try store.load(name)
        let (state, _) = InstanceState.probe(store.files(name))
        guard state == .running else { throw WispError(.failed, "instance \(name) is \(state.rawValue), not running (wisp start \(name))") }
        let tty = command.isEmpty && isatty(STDIN_FILENO) == 1
        // exec's one word is a program, not a shell line: quoted like the many-word case.
        let words = forceArgv && command.count == 1 ? [InstanceSSH.shellQuote(command[0])] : command
        let status = try InstanceSSH(record: record, files: store.files(name)).run(words, tty: tty)
        if status != 0 { throw ExitCode(status) }
    }
}
