import Foundation
import Testing
import WispTestSupport
@testable import WispKit

@Suite struct LogTailTests {
    static func tail(_ text: [UInt8], _ count: Int) throws -> [UInt8] {
        let dir = try TemporaryDirectory("wisp-log-tail")
        let path = dir.file("serial.log")
        try Data(text).write(to: URL(fileURLWithPath: path))
        let handle = try #require(FileHandle(forReadingAtPath: path))
        try handle.seek(toOffset: try LogTail.offsetOfLastLines(count, in: handle))
        return [UInt8](handle.readDataToEndOfFile())
    }

    @Test func lastLinesAcrossChunkBoundaries() throws {
        // 200,000 numbered lines (about 1.3 MB): the answer spans several 64 KiB steps.
        let lines = (0..<200_000).map { "line \($0)\n" }
        let text = Array(lines.joined().utf8)
        #expect(try Self.tail(text, 3) == Array(lines.suffix(3).joined().utf8))
        #expect(try Self.tail(text, 20_000) == Array(lines.suffix(20_000).joined().utf8))
        #expect(try Self.tail(text, 0) == [])
        #expect(try Self.tail(text, 300_000) == text, "more lines than the log has: all of it")
    }

    @Test func aLastLineWithoutNewlineCounts() throws {
        #expect(try Self.tail(Array("a\nb\nc".utf8), 2) == Array("b\nc".utf8))
        #expect(try Self.tail(Array("a\nb\nc\n".utf8), 2) == Array("b\nc\n".utf8))
        #expect(try Self.tail([], 5) == [])
        #expect(try Self.tail(Array("\n\n\n".utf8), 2) == Array("\n\n".utf8))
    }
}
