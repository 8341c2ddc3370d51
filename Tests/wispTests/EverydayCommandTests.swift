import Foundation
import Testing
import WispCore
import WispTestSupport

/// The habits of issue 17 that need no guest: one error prefix, "did you mean", several
/// names per verb, checks before work with nothing left behind.
@Suite struct EverydayCommandTests {
    static func environment(_ dir: TemporaryDirectory) -> [String: String] {
        ["XDG_DATA_HOME": dir.file("data"), "XDG_CACHE_HOME": dir.file("cache"), "XDG_CONFIG_HOME": dir.file("config"), "HOME": dir.path]
    }

    static func instances(_ dir: TemporaryDirectory) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.file("data") + "/wisp/instances")) ?? []).filter { !$0.hasPrefix(".") }
    }

    @Test func mistypedVerbsGetASuggestion() throws {
        let dir = try TemporaryDirectory("wisp-everyday")
        let cases: [([String], String)] = [
            (["rnu", "x.qcow2"], "wisp: 'rnu' is not a wisp command; did you mean 'wisp run'? (see 'wisp --help')\n"),
            (["image", "cnovert", "a", "b"], "wisp: 'cnovert' is not a wisp image command; did you mean 'wisp image convert'? (see 'wisp image --help')\n"),
            (["lsit"], "wisp: 'lsit' is not a wisp command; did you mean 'wisp list'? (see 'wisp --help')\n"),
            (["frobnicate"], "wisp: 'frobnicate' is not a wisp command (see 'wisp --help')\n"),
        ]
        for (arguments, expected) in cases {
            let r = try WispBinary.run(arguments, environment: Self.environment(dir))
            #expect(r.status == 64, "\(arguments)")
            #expect(r.stderrText == expected, "\(arguments): \(r.stderrText)")
        }
    }

    @Test func everyErrorStartsWithWisp() throws {
        let dir = try TemporaryDirectory("wisp-everyday")
        for arguments in [["stop", "--bogus", "x"], ["run"], ["image", "info"], ["logs", "--tail", "-1", "x"], ["exec", "x"]] {
            let r = try WispBinary.run(arguments, environment: Self.environment(dir))
            #expect(r.status == 64, "\(arguments)")
            #expect(r.stderrText.hasPrefix("wisp: "), "\(arguments): \(r.stderrText)")
            #expect(!r.stderrText.contains("Error:"), "\(arguments): \(r.stderrText)")
        }
        // The usage line is the failing command's own.
        let stop = try WispBinary.run(["stop", "--bogus", "x"], environment: Self.environment(dir))
        #expect(stop.stderrText.contains("Usage: wisp stop <names> ..."), "\(stop.stderrText)")
        // Help still goes to standard output.
        let help = try WispBinary.run(["stop", "--help"], environment: Self.environment(dir))
        #expect(help.status == 0 && help.stdoutText.contains("-f, --force") && help.stderrText.isEmpty)
    }

    @Test func severalNamesAreEachTried() throws {
        let dir = try TemporaryDirectory("wisp-everyday")
        for verb in [["stop"], ["stop", "-f"], ["start"], ["rm", "-f"], ["info"]] {
            let r = try WispBinary.run(verb + ["ghost1", "ghost2"], environment: Self.environment(dir))
            #expect(r.status == 1, "\(verb)")
            if verb != ["info"] {
                #expect(r.stderrText == "wisp: no instance named ghost1 (see wisp list)\nwisp: no instance named ghost2 (see wisp list)\n", "\(verb): \(r.stderrText)")
            }
        }
    }

    @Test func checksBeforeWorkLeaveNothing() throws {
        let dir = try TemporaryDirectory("wisp-everyday")
        let env = Self.environment(dir)
        let image = dir.file("disk.qcow2")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", image, "64M"])

        let small = try WispBinary.run(["run", "--accel", "tcg", "--disk-size", "16M", image], environment: env)
        #expect(small.status == 64, "\(small.stderrText)")
        #expect(small.stderrText.hasSuffix("\nwisp: --disk-size 16 MiB is smaller than the image (64 MiB): a disk can only grow\n"), "\(small.stderrText)")

        // A port another program holds is named before anything is made.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        _ = listen(listener, 1)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        let port = UInt16(bigEndian: address.sin_port)
        let taken = try WispBinary.run(["run", "--accel", "tcg", "-p", "\(port):80", image], environment: env)
        #expect(taken.status == 1)
        #expect(taken.stderrText == "wisp: host port 127.0.0.1:\(port) is in use by another program (pick another port)\n", "\(taken.stderrText)")
        let twice = try WispBinary.run(["run", "--accel", "tcg", "-p", "18080:80", "-p", "18080:81", image], environment: env)
        #expect(twice.status == 64 && twice.stderrText.contains("forwarded twice"), "\(twice.stderrText)")

        let tiny = try WispBinary.run(["run", "--accel", "tcg", "--memory", "64", image], environment: env)
        #expect(tiny.status == 64 && tiny.stderrText.contains("at least 128M"), "\(tiny.stderrText)")
        #expect(Self.instances(dir).isEmpty)
    }

    @Test func aSeedNobodyCanLogInWithIsRefused() throws {
        let dir = try TemporaryDirectory("wisp-everyday")
        let env = Self.environment(dir)  // HOME has no ~/.ssh
        let out = dir.file("seed.iso")
        let refused = try WispBinary.run(["seed", out], environment: env)
        #expect(refused.status == 64)
        #expect(refused.stderrText.contains("nobody could log in") && refused.stderrText.contains("--allow-no-login"), "\(refused.stderrText)")
        #expect(!FileManager.default.fileExists(atPath: out))
        let allowed = try WispBinary.run(["seed", "--allow-no-login", out], environment: env)
        #expect(allowed.status == 0, "\(allowed.stderrText)")
        #expect(FileManager.default.fileExists(atPath: out))
        // The judge: the written user-data has no key and no password.
        _ = try ToolRunner.check("xorriso", ["-osirrox", "on", "-indev", out, "-extract", "/user-data", dir.file("user-data")])
        let userData = try String(contentsOfFile: dir.file("user-data"), encoding: .utf8)
        #expect(!userData.contains("ssh_authorized_keys") && !userData.contains("hashed_passwd"))
    }

    /// `-p` works whatever stderr is: not a terminal here, so a line per tenth that ends at
    /// 100%; without -p, nothing (as qemu-img).
    @Test func progressLinesWhenStderrIsNotATerminal() throws {
        let dir = try TemporaryDirectory("wisp-everyday")
        let source = dir.file("a.raw")
        try ToolRunner.check("dd", ["if=/dev/urandom", "of=\(source)", "bs=1M", "count=48", "status=none"])
        let shown = try WispBinary.run(["image", "convert", "-p", "-O", "qcow2", source, dir.file("b.qcow2")])
        #expect(shown.status == 0, "\(shown.stderrText)")
        let lines = shown.stderrText.split(separator: "\n").map(String.init)
        #expect(lines.count >= 10 && lines.count <= 12, "\(lines)")
        #expect(lines.allSatisfy { $0.hasPrefix("converting: ") && $0.contains(" of 48 MiB") }, "\(lines)")
        #expect(lines.last?.hasPrefix("converting: 100% 48 MiB of 48 MiB") == true, "\(lines)")
        let quiet = try WispBinary.run(["image", "convert", "-O", "qcow2", source, dir.file("c.qcow2")])
        #expect(quiet.status == 0 && quiet.stderrText.isEmpty, "\(quiet.stderrText)")
    }
}
