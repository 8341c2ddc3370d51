import Foundation
import Testing
import WispCore
import WispTestSupport

/// `$XDG_CONFIG_HOME/wisp/config.yaml`: defaults for run, each shown with its source,
/// overridden by flags, and a typo is an error naming the file and the key.
@Suite struct ConfigCommandTests {
    static func write(_ dir: TemporaryDirectory, _ text: String) throws {
        try FileManager.default.createDirectory(atPath: dir.file("config/wisp"), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: dir.file("config/wisp/config.yaml")))
    }

    @Test func showsEachValueWithItsSource() throws {
        let dir = try TemporaryDirectory("wisp-config")
        let env = EverydayCommandTests.environment(dir)
        let none = try WispBinary.check(["config", "show", "--json"], environment: env).stdoutText
        let defaults = try #require(try JSONSerialization.jsonObject(with: Data(none.utf8)) as? [String: [String: Any]])
        #expect(defaults["cpus"]?["value"] as? Int == 2 && defaults["cpus"]?["source"] as? String == "default")
        #expect(defaults["memory"]?["value"] as? Int == 2 << 30)
        #expect(defaults["disk-size"]?["value"] is NSNull)

        try Self.write(dir, "cpus: 3\nmemory: 3072\nssh-keys: ~/.ssh/work.pub\naccelerator: tcg\nuser: dev\n")
        let file = dir.file("config/wisp/config.yaml")
        let shown = try WispBinary.check(["config", "show", "--json"], environment: env).stdoutText
        let settings = try #require(try JSONSerialization.jsonObject(with: Data(shown.utf8)) as? [String: [String: Any]])
        #expect(settings["cpus"]?["value"] as? Int == 3 && settings["cpus"]?["source"] as? String == file)
        #expect(settings["memory"]?["value"] as? Int == 3 << 30, "a bare number is MiB")
        #expect(settings["ssh-keys"]?["value"] as? [String] == [dir.path + "/.ssh/work.pub"])
        #expect(settings["accelerator"]?["value"] as? String == "tcg")
        #expect(settings["mounts"]?["source"] as? String == "default")
        let text = try WispBinary.check(["config", "show"], environment: env).stdoutText
        #expect(text.contains("user         dev  (\(file))"), "\(text)")
        #expect(try WispBinary.check(["config", "path"], environment: env).stdoutText == file + "\n")
    }

    @Test func mistakesNameTheFileAndTheKey() throws {
        let dir = try TemporaryDirectory("wisp-config")
        let env = EverydayCommandTests.environment(dir)
        let file = dir.file("config/wisp/config.yaml")
        let cases: [(String, String)] = [
            ("memroy: 2G\n", "\(file): unknown setting 'memroy' (did you mean memory?)"),
            ("cpus: many\n", "\(file): cpus: expected 1 to 256"),
            ("memory: 64\n", "\(file): memory: at least 128M"),
            ("accelerator: hvf\n", "\(file): accelerator: 'hvf': expected auto, kvm or tcg"),
            ("user: Root User\n", "\(file): user: 'Root User' is not a valid login name"),
            ("[1, 2]\n", "\(file): expected a mapping"),
            ("cpus: [1\n", "\(file): not valid YAML"),
            ("cpus: 1\ncpus: 2\n", "\(file): cpus: given twice"),
        ]
        for (text, expected) in cases {
            try Self.write(dir, text)
            let r = try WispBinary.run(["config", "show"], environment: env)
            #expect(r.status == 1, "\(text)")
            #expect(r.stderrText.hasPrefix("wisp: " + expected), "\(text): \(r.stderrText)")
            // run reads the same file, before any work.
            let run = try WispBinary.run(["run", "--accel", "tcg", dir.file("none.qcow2")], environment: env)
            #expect(run.status == 1 && run.stderrText.contains(expected), "\(text): \(run.stderrText)")
        }
    }

    @Test func runTakesItsDefaultsFromTheFileAndFlagsWin() throws {
        let dir = try TemporaryDirectory("wisp-config")
        let env = EverydayCommandTests.environment(dir)
        let image = dir.file("disk.qcow2")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", image, "64M"])
        try Self.write(dir, "disk-size: 16M\naccelerator: tcg\n")
        // The config's disk size reaches run's checks...
        let small = try WispBinary.run(["run", image], environment: env)
        #expect(small.status == 64 && small.stderrText.contains("16 MiB is smaller than the image (64 MiB)"), "\(small.stderrText)")
        // ...and a flag overrides it (the blank disk is then refused as having nothing to boot).
        let flagged = try WispBinary.run(["run", "--disk-size", "128M", image], environment: env)
        #expect(!flagged.stderrText.contains("smaller than the image"), "\(flagged.stderrText)")
        #expect(EverydayCommandTests.instances(dir).isEmpty)
    }
}
