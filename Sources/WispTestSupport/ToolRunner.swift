import Foundation
import WispCore

/// Runs the real tools that make fixtures and judge Wisp's output in tests (mkfs.*, qemu-img,
/// fsck.*, xorriso, ...). A tool that is missing or fails is an error with its stderr, so a
/// test can never pass because its judge did not run.
public struct ToolResult: Sendable {
    public var status: Int32
    public var stdout: Data
    public var stderr: Data
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

public enum ToolRunner {
    /// The absolute path of `name` on PATH (plus the sbin directories where mkfs lives).
    public static func locate(_ name: String) -> String? {
        if name.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
            + ":/usr/local/sbin:/usr/sbin:/sbin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `tool` with `arguments`, feeding `input` on stdin; returns whatever it exits with.
    public static func run(_ tool: String, _ arguments: [String], input: Data? = nil,
                           environment: [String: String]? = nil, currentDirectory: String? = nil) throws -> ToolResult {
        guard let executable = locate(tool) else {
            throw WispError.notFound("\(tool): not installed (scripts/setup installs every tool the tests use)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        // Every `wisp run` a test makes boots cold (WISP_COLD=1, as --cold) unless the test
        // asks for warm clones (WISP_COLD=0 in its environment): the suites that judge a
        // boot must see one, and a template per sandbox would add a save to each.
        process.environment = ProcessInfo.processInfo.environment.merging(["WISP_COLD": "1"].merging(environment ?? [:]) { $1 }) { $1 }
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        let outPipe = Pipe(), errPipe = Pipe(), inPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        try process.run()
        // Drain both pipes concurrently so a chatty tool cannot deadlock on a full pipe.
        let outBox = LockedValue(Data()), errBox = LockedValue(Data())
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            let d = outPipe.fileHandleForReading.readDataToEndOfFile()
            outBox.withLock { $0 = d }
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async {
            let d = errPipe.fileHandleForReading.readDataToEndOfFile()
            errBox.withLock { $0 = d }
            group.leave()
        }
        if let input {
            inPipe.fileHandleForWriting.write(input)
            try? inPipe.fileHandleForWriting.close()
        }
        process.waitUntilExit()
        group.wait()
        return ToolResult(status: process.terminationStatus, stdout: outBox.withLock { $0 },
                          stderr: errBox.withLock { $0 })
    }

    /// Runs `tool` and throws unless it exits 0.
    @discardableResult
    public static func check(_ tool: String, _ arguments: [String], input: Data? = nil,
                             environment: [String: String]? = nil, currentDirectory: String? = nil) throws -> ToolResult {
        let result = try run(tool, arguments, input: input, environment: environment, currentDirectory: currentDirectory)
        guard result.status == 0 else {
            throw WispError.processFailed("\(tool) \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderrText)\(result.stdoutText)", status: result.status)
        }
        return result
    }
}
