import ArgumentParser
import WispKit

struct FSGet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Copy a file or a directory tree out of a disk image.",
        discussion: """
        Files are written atomically with their permissions and times; directories and \
        symlinks are recreated; owners are kept when running as root. If DEST is an \
        existing directory the copy goes inside it, as with cp -r.
        """
    )

    @OptionGroup var options: FSImageOptions
    @Argument(help: "The file or directory inside the image.") var path: String
    @Option(name: .shortAndLong, help: "Where to write it on the host.") var output: String

    func run() async throws {
        do {
            let fs = try options.openFileSystem()
            let report = try GuestExtraction(fileSystem: fs).extract(path, to: output)
            for warning in report.warnings { FileOutput.standardError("wisp: warning: \(warning)\n") }
        }
    }
}
