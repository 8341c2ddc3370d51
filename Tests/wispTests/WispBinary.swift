import Foundation
import WispCore
import WispTestSupport

/// The built `wisp` binary, the one users run: $WISP_BINARY, else .build/debug/wisp.
enum WispBinary {
    static func path() throws -> String {
        let path = ProcessInfo.processInfo.environment["WISP_BINARY"] ?? TestImage.repositoryRoot + "/.build/debug/wisp"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw WispError.notFound("\(path) is missing: run `swift build` first (scripts/test does), or set WISP_BINARY")
        }
        return path
    }

    /// Runs `wisp ARGS`; the result carries whatever it exits with.
    static func run(_ arguments: [String], input: Data? = nil, environment: [String: String]? = nil) throws -> ToolResult {
        try ToolRunner.run(try path(), arguments, input: input, environment: environment)
    }

    /// Runs `wisp ARGS` and throws (with its stderr) unless it exits 0.
    @discardableResult
    static func check(_ arguments: [String], input: Data? = nil, environment: [String: String]? = nil) throws -> ToolResult {
        try ToolRunner.check(try path(), arguments, input: input, environment: environment)
    }

    static func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
}
