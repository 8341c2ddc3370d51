import Foundation
import Testing
import WispTestSupport
@testable import WispCore

/// Errors from Foundation and the runtime become one sentence and a kind; their own text
/// (`NSCocoaErrorDomain Code=516`, `keyNotFound(CodingKeys(...`) never reaches users.
@Suite struct ForeignErrorTranslationTests {
    @Test func foundationFileErrorsBecomeSentencesWithKinds() throws {
        let dir = try TemporaryDirectory("translate")
        let file = dir.file("plain")
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        // The real error FileManager throws when a directory is wanted where a file is.
        do {
            try FileManager.default.createDirectory(atPath: file, withIntermediateDirectories: true)
            Issue.record("FileManager created a directory over a file")
        } catch {
            let translated = try #require(ForeignErrorTranslation.wispError(error))
            #expect(translated.kind == .alreadyExists)
            #expect(translated.message == "\(file): already exists")
            #expect(!translated.message.contains("Domain"))
        }
        do {
            _ = try Data(contentsOf: URL(fileURLWithPath: dir.file("missing")))
            Issue.record("read a missing file")
        } catch {
            let translated = try #require(ForeignErrorTranslation.wispError(error))
            #expect(translated.kind == .notFound)
            #expect(translated.message == "\(dir.file("missing")): no such file or directory")
        }
        // Wisp's own directory creation says it in its own words, with the same kind.
        #expect {
            try DirectoryCreation.createDirectories(file + "/sub")
        } throws: { error in
            (error as? WispError)?.kind == .alreadyExists && "\(error)" == "\(file): exists and is not a directory"
        }
        try DirectoryCreation.createDirectories(dir.file("a/b/c"))
        try DirectoryCreation.createDirectories(dir.file("a/b/c"))
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: dir.file("a/b/c"), isDirectory: &isDirectory) && isDirectory.boolValue)
    }

    @Test func decodingErrorsSayWhereInTheDocument() throws {
        struct Record: Decodable { var name: String; var memory: Int }
        do {
            _ = try JSONDecoder().decode(Record.self, from: Data(#"{"name": "x", "memory": "lots"}"#.utf8))
            Issue.record("decoded")
        } catch {
            let translated = try #require(ForeignErrorTranslation.wispError(error))
            #expect(translated.kind == .corrupt)
            #expect(translated.message == "wrong type of value at memory")
        }
        do {
            _ = try JSONDecoder().decode(Record.self, from: Data(#"{"memory": 1}"#.utf8))
            Issue.record("decoded")
        } catch {
            #expect(ForeignErrorTranslation.sentence(error) == "missing \"name\" at the top level")
        }
        // Errors Wisp does not know (ArgumentParser's own) are left to their owner.
        struct Other: Error {}
        #expect(ForeignErrorTranslation.wispError(Other()) == nil)
    }
}
