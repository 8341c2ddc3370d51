import Foundation
import Testing
import WispCore
import WispTestSupport

/// Two `wisp run` at the same moment, as two shells would start them: the same name (one
/// wins, the other is told the name is taken) and different names on one base that must
/// be converted into the cache first (both boot, the cache holds one conversion).
@Suite(.serialized) struct ConcurrentRunTests {
    /// Runs `wisp` with each argument list at once, on threads of their own.
    static func together(_ box: FaultBox, _ argumentLists: [[String]]) throws -> [ToolResult] {
        let results = LockedValue([Int: Result<ToolResult, any Error>]())
        DispatchQueue.concurrentPerform(iterations: argumentLists.count) { index in
            let result = Result { try box.wisp(argumentLists[index]) }
            results.withLock { $0[index] = result }
        }
        let collected = results.withLock { $0 }
        return try argumentLists.indices.map { index in
            guard let result = collected[index] else { throw WispError(.failed, "run \(index) did not report") }
            return try result.get()
        }
    }

    @Test func twoRunsOfOneNameAtOnce() throws {
        let box = try FaultBox("wisp-two-runs")
        let base = try box.blankDisk()
        let arguments = ["run", "--boot", "uefi", "--detach", "--accel", "tcg", "--memory", "256M", "--cpus", "1", "--name", "x", base]
        for _ in 0..<3 {
            let results = try Self.together(box, [arguments, arguments])
            defer { _ = try? box.wisp(["rm", "--force", "x"]) }
            #expect(results.map(\.status).sorted() == [0, 1], "\(results.map(\.stderrText))")
            let loser: String = results.filter { $0.status == 1 }.map(\.stderrText).first ?? ""
            #expect(loser.contains("\nwisp: the name x is taken: "), "\(loser)")
            #expect(try box.states() == ["x": "running"])
            #expect(leftovers(box.instancesDirectory).isEmpty, "\(allEntries(box.instancesDirectory))")
            let removed = try box.wisp(["rm", "--force", "x"])
            #expect(removed.status == 0, "\(removed.stderrText)")
        }
    }

    /// A VMDK base is converted once into the cache (`ForeignFormatCache`): two runs of it
    /// under different names at once both boot; one converts while the other waits for it.
    @Test func twoRunsOfOneConvertedBaseAtOnce() throws {
        let box = try FaultBox("wisp-two-bases")
        let blank = try box.blankDisk()
        try ToolRunner.check("qemu-io", ["-f", "qcow2", "-c", "write -P 0x61 0 4M", blank])
        let base = box.dir.file("base.vmdk")
        try ToolRunner.check("qemu-img", ["convert", "-O", "vmdk", blank, base])
        func arguments(_ name: String) -> [String] {
            ["run", "--boot", "uefi", "--detach", "--accel", "tcg", "--memory", "256M", "--cpus", "1", "--name", name, base]
        }
        let results = try Self.together(box, [arguments("a"), arguments("b")])
        defer { _ = try? box.wisp(["rm", "--force", "a"]); _ = try? box.wisp(["rm", "--force", "b"]) }
        #expect(results.map(\.status) == [0, 0], "\(results.map(\.stderrText))")
        #expect(try box.states() == ["a": "running", "b": "running"])
        let converted = allEntries(box.cacheHome + "/wisp/images/converted")
        #expect(converted.filter { $0.hasSuffix(".qcow2") && !$0.hasPrefix(".") }.count == 1, "\(converted)")
        #expect(leftovers(box.cacheHome).isEmpty, "\(converted)")
        for name in ["a", "b"] {
            let overlay = box.instancesDirectory + "/\(name)/overlay.qcow2"
            try ToolRunner.check("qemu-img", ["check", "-q", "--force-share", overlay])
            try ToolRunner.check("qemu-io", ["-r", "-U", "-f", "qcow2", "-c", "read -P 0x61 0 4M", overlay])
            #expect(try box.wisp(["rm", "--force", name]).status == 0)
        }
    }
}
