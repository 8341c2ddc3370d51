import ArgumentParser
import WispKit

struct CopyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cp",
        abstract: "Copy files and directories between the host and a running instance.",
        discussion: """
        One of SRC and DST is NAME:PATH, a path in the running instance NAME (relative to \
        the guest user's home); the other is a host path (write one with a colon as ./a:b). \
        Directories are copied recursively with their modes, symlinks and empty directories \
        (tar over the instance's SSH); the extracting user owns the copies. As with cp -r, \
        a DST that is an existing directory receives SRC inside it; otherwise SRC is written \
        as DST, unpacked beside it first and renamed into place, so an interrupted copy \
        leaves no half-written DST.

        Exit status: 0 copied; 1 no such instance, instance not running, no such file on \
        either side, or the copy failed; 64 both sides on the host or both in instances.

        Examples:
          wisp cp ./src web:/home/me/           # the directory src into the guest
          wisp cp web:/var/log/syslog .          # a guest file into the current directory
          wisp cp 'notes 2024.txt' web:notes.txt # names with spaces
        """)

    @Argument(help: "What to copy: a host path or NAME:PATH.") var source: String
    @Argument(help: "Where to copy it: a host path or NAME:PATH.") var destination: String

    func run() async throws {
        try InstanceCopy().copy(from: .parse(source), to: .parse(destination))
    }
}
