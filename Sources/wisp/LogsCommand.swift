import ArgumentParser
import Foundation
import WispCore
import WispKit
#if canImport(Glibc)
import Glibc
#endif

struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs", abstract: "Print an instance's serial console log.",
        discussion: """
        Examples:
          wisp logs web
          wisp logs -f --tail 50 web     # the last 50 lines, then new output as it comes
        """)

    @Argument(help: "Instance name.") var name: String
    @Flag(name: [.short, .long], help: "Keep printing new output.") var follow = false
    @Option(name: [.short, .long], help: "Start with only the last N lines.") var tail: Int?

    func validate() throws {
        if let tail, tail < 0 { throw ValidationError("--tail must be 0 or more") }
    }

    func run() async throws {
        let store = InstanceStore()
        _ = try store.load(name)
        let path = store.files(name).serialLog
        guard let handle = FileHandle(forReadingAtPath: path) else {
            if !follow { return }
            throw WispError.notFound("\(path): instance \(name) has not booted yet")
        }
        if let tail { try handle.seek(toOffset: LogTail.offsetOfLastLines(tail, in: handle)) }
        while true {
            let data = handle.readDataToEndOfFile()
            if !data.isEmpty { FileHandle.standardOutput.write(data) }
            guard follow else { return }
            try await Task.sleep(nanoseconds: 300_000_000)
        }
    }
}
