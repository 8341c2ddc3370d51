import Foundation
import Testing
import WispCore
import WispTestSupport

/// scripts/make-docs: a manual page per command, rendered by groff without a warning, and
/// completion scripts bash really loads and uses.
@Suite struct ManualAndCompletionTests {
    static var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    @Test func everyCommandHasAPageGroffAccepts() throws {
        let dir = try TemporaryDirectory("wisp-docs")
        try ToolRunner.check(Self.repository + "/scripts/make-docs", [try WispBinary.path(), "--out", dir.path])
        let pages = try FileManager.default.contentsOfDirectory(atPath: dir.file("man/man1")).sorted()
        for verb in ["wisp.1", "wisp-run.1", "wisp-info.1", "wisp-image-convert.1", "wisp-port-add.1", "wisp-config-show.1", "wisp-exec.1"] {
            #expect(pages.contains(verb), "\(verb) missing from \(pages)")
        }
        #expect(!pages.contains { $0.hasSuffix(".tmp") })
        for page in pages {
            let rendered = try ToolRunner.run("groff", ["-man", "-Tutf8", "-ww", "-z", dir.file("man/man1/\(page)")])
            #expect(rendered.status == 0 && rendered.stderrText.isEmpty, "\(page): \(rendered.stderrText)")
        }
        let run = try ToolRunner.check("groff", ["-man", "-Tascii", "-P-c", dir.file("man/man1/wisp-run.1")]).stdoutText
        #expect(run.contains("--disk-size") && run.contains("wisp run --rm image.qcow2"), "the page holds the options and the help's examples")
    }

    @Test func bashCompletesVerbsAndOptions() throws {
        let dir = try TemporaryDirectory("wisp-docs")
        try ToolRunner.check(Self.repository + "/scripts/make-docs", [try WispBinary.path(), "--out", dir.path])
        let script = dir.file("bash-completion/completions/wisp")
        func complete(_ words: [String]) throws -> [String] {
            let line = words.joined(separator: " ")
            let program = """
            source '\(script)'
            COMP_WORDS=(\(words.map { "'\($0)'" }.joined(separator: " "))); COMP_CWORD=\(words.count - 1)
            COMP_LINE='\(line)'; COMP_POINT=\(line.count)
            _wisp wisp '\(words.last ?? "")' '\(words.dropLast().last ?? "")'
            printf '%s\\n' "${COMPREPLY[@]}"
            """
            return try ToolRunner.check("bash", ["-c", program]).stdoutText.split(separator: "\n").map(String.init)
        }
        #expect(try complete(["wisp", "in"]).sorted() == ["info", "inspect"])
        #expect(try complete(["wisp", "stop", "--f"]).contains("--force"))
        #expect(try complete(["wisp", "image", "con"]) == ["convert"])
    }
}
