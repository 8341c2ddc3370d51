import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import CloudInit

/// Judges: mkpasswd (whois) hashes the same password with the same salt to the same string,
/// and Python's crypt module verifies our hashes.
@Suite struct PasswordHasherTests {
    @Test(arguments: [PasswordHasher.Method.yescrypt, .sha512])
    func hashesVerifyWithPythonCrypt(_ method: PasswordHasher.Method) throws {
        let hash = try PasswordHasher.hash("correct horse battery staple", method: method)
        #expect(hash.hasPrefix(method == .yescrypt ? "$y$" : "$6$"))
        #expect(PasswordHasher.verify("correct horse battery staple", against: hash))
        #expect(!PasswordHasher.verify("wrong", against: hash))
        let script = "import crypt,sys; h=sys.argv[1]; print(crypt.crypt('correct horse battery staple', h) == h)"
        let result = try ToolRunner.check("/usr/bin/python3", ["-W", "ignore", "-c", script, hash])
        #expect(result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "True")
        // Fresh salt every time.
        #expect(try PasswordHasher.hash("correct horse battery staple", method: method) != hash)
    }

    @Test func sha512MatchesMkpasswdForTheSameSalt() throws {
        let ours = try PasswordHasher.hash(bytes: Array("s3cret pass".utf8), setting: "$6$abcdefghijklmnop")
        let theirs = try ToolRunner.check("mkpasswd", ["-m", "sha512crypt", "-S", "abcdefghijklmnop", "-s"],
                                          input: Data("s3cret pass\n".utf8)).stdoutText
        #expect(ours == theirs.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// mkpasswd makes a yescrypt hash with its own salt; hashing the same password with that
    /// hash as the setting must reproduce it exactly.
    @Test func yescryptReproducesMkpasswd() throws {
        let theirs = try ToolRunner.check("mkpasswd", ["-m", "yescrypt", "-s"], input: Data("s3cret pass\n".utf8))
            .stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(theirs.hasPrefix("$y$"))
        #expect(try PasswordHasher.hash(bytes: Array("s3cret pass".utf8), setting: theirs) == theirs)
        #expect(PasswordHasher.verify("s3cret pass", against: theirs))
    }

    @Test func rejectsNULAndBadSettings() {
        #expect(throws: WispError.self) { try PasswordHasher.hash(bytes: [0x61, 0, 0x62], method: .sha512) }
        #expect(throws: WispError.self) { try PasswordHasher.hash(bytes: Array("x".utf8), setting: "$nonsense$") }
        #expect(PasswordHasher.looksHashed("$y$j9T$abc$def"))
        #expect(!PasswordHasher.looksHashed("plaintext"))
    }
}
