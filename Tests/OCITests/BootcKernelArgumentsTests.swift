import Testing
import WispCore
@testable import OCI

@Suite struct BootcKernelArgumentsTests {
    typealias File = BootcKernelArguments.File

    @Test func mergesInNameOrderAndHonoursArchitectures() throws {
        let files = [
            File(name: "20-console.toml", text: "kargs = [\"console=ttyS0,115200n8\"]\nmatch-architectures = [\"x86_64\"]\n"),
            File(name: "10-base.toml", text: """
                # from the base image
                kargs = [
                  "rw",          # root writable
                  'quiet',
                  "systemd.journald.forward_to_console=1",
                ]
                """),
            File(name: "30-arm.toml", text: "match-architectures = ['aarch64']\nkargs = [\"console=ttyAMA0\"]"),
        ]
        #expect(try BootcKernelArguments.merge(files, architecture: "x86_64")
                == ["rw", "quiet", "systemd.journald.forward_to_console=1", "console=ttyS0,115200n8"])
        #expect(try BootcKernelArguments.merge(files, architecture: "aarch64")
                == ["rw", "quiet", "systemd.journald.forward_to_console=1", "console=ttyAMA0"])
        #expect(try BootcKernelArguments.merge([], architecture: "x86_64").isEmpty)
        #expect(try BootcKernelArguments.merge([File(name: "e.toml", text: "kargs = []\n")], architecture: "x86_64").isEmpty)
    }

    @Test func anythingOutsideTheFormatIsAnErrorNamingTheFileAndLine() {
        let bad: [(String, String)] = [
            ("kernel-args = [\"x\"]", "unknown key \"kernel-args\""),
            ("kargs = \"x\"", "expected an array of strings"),
            ("kargs = [\"x\"\n", "expected , or ]"),
            ("kargs = [\"x\"]\nkargs = [\"y\"]", "appears twice"),
            ("kargs = [\"unterminated]", "unterminated string"),
            ("kargs = [\"broken\n\"]", "a string ends at the line's end"),
            ("kargs = [1]", "expected a string"),
            ("[section]\nkargs = []", "expected a key"),
            ("kargs = [\"a\\x41\"]", "not supported"),
        ]
        for (text, expected) in bad {
            #expect {
                try BootcKernelArguments.merge([File(name: "/usr/lib/bootc/kargs.d/bad.toml", text: text)], architecture: "x86_64")
            } throws: { error in
                guard let error = error as? WispError else { return false }
                return error.kind == .corrupt && error.message.hasPrefix("/usr/lib/bootc/kargs.d/bad.toml: bootc kargs.d file: line ")
                    && error.message.contains(expected)
            }
        }
    }
}
