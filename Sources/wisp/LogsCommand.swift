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
        if let tail { try handle.seek(toOffset: Self.offsetOfLastLines(tail, in: handle)) }
        while true {
            let data = handle.readDataToEndOfFile()
            if !data.isEmpty { FileHandle.standardOutput.write(data) }
            guard follow else { return }
            try await Task.sleep(nanoseconds: 300_000_000)
        }
    }

    /// Where the last `count` lines start, read backwards in 64 KiB steps so a long log is
    /// not read whole. A last line without its newline counts as a line.
    static func offsetOfLastLines(_ count: Int, in handle: FileHandle) throws -> UInt64 {
        let end = try handle.seekToEnd()
        guard end > 0 else { return 0 }
        var position = end
        var newlines = 0
        // The final newline ends the last line; it does not start one.
        try handle.seek(toOffset: end - 1)
        let endsWithNewline = handle.readData(ofLength: 1).first == 0x0A
        let wanted = count + (endsWithNewline ? 1 : 0)
        while position > 0 {
            let step = min(position, 64 << 10)
            position -= step
            try handle.seek(toOffset: position)
            let chunk = [UInt8](handle.readData(ofLength: Int(step)))
            for index in chunk.indices.reversed() where chunk[index] == 0x0A {
                newlines += 1
                if newlines == wanted { return position + UInt64(index) + 1 }
            }
        }
        return 0
    }
}
