import Foundation
import Testing
import WispCore
import WispTestSupport

/// The real `wisp` binary boots the real arm64 test image (scripts/make-test-image --arch
/// arm64, exported by scripts/test as WISP_TEST_IMAGE_ARM64) under TCG on whatever host
/// runs the tests: the architecture comes from the image, the seed's user and key log in,
/// and `run --rm -- CMD` returns CMD's exit code.
@Suite(.serialized) struct AArch64BootTests {
    static func imagePath() throws -> String {
        guard let path = ProcessInfo.processInfo.environment["WISP_TEST_IMAGE_ARM64"], !path.isEmpty else {
            throw WispError.notFound("WISP_TEST_IMAGE_ARM64 is not set: run the tests through scripts/test, or export WISP_TEST_IMAGE_ARM64=$(scripts/make-test-image --arch arm64)")
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw WispError.notFound("WISP_TEST_IMAGE_ARM64=\(path) does not exist: rebuild it with scripts/make-test-image --arch arm64")
        }
        return path
    }

    static func wispBinary() throws -> String {
        let candidates = ["debug", "release"].map { "\(TestImage.repositoryRoot)/.build/\($0)/wisp" }
        guard let wisp = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw WispError.notFound("the wisp binary is not built (looked for \(candidates)): run swift build first")
        }
        return wisp
    }

    @Test func inspectSaysAArch64() throws {
        let image = try Self.imagePath()
        let result = try ToolRunner.check(try Self.wispBinary(), ["inspect", "--json", image])
        let report = try JSONSerialization.jsonObject(with: Data(result.stdoutText.utf8)) as? [String: Any]
        #expect(report?["architecture"] as? String == "aarch64")
        let kernel = report?["kernel"] as? [String: Any]
        #expect(kernel?["architecture"] as? String == "arm64")
        // The cloud flavour's vmlinuz is a bare Image (linux-image-arm64's is gzip-compressed;
        // KernelImageTests covers that form and EFI zboot on kernels built in the test).
        #expect(kernel?["format"] as? String == "arm64 Image")
        #expect(kernel?["qemu-direct-boot"] as? Bool == true)
    }

    @Test(.timeLimit(.minutes(30))) func runUnameUnderTCG() throws {
        let image = try Self.imagePath()
        let wisp = try Self.wispBinary()
        let dir = try TemporaryDirectory("wisp-e2e-arm64")
        let environment = ["XDG_DATA_HOME": dir.file("data"), "XDG_CACHE_HOME": dir.file("cache")]
        defer {
            let instances = dir.file("data") + "/wisp/instances"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: instances)) ?? [] {
                _ = try? ToolRunner.run(wisp, ["rm", "--force", name], environment: environment)
                if let text = try? String(contentsOfFile: "\(instances)/\(name)/qemu.pid", encoding: .utf8),
                   let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                    kill(pid, SIGKILL)
                }
            }
        }
        let started = Date()
        // No --arch: the image's kernel says aarch64. The command logs in with the seed's
        // user and the instance key, over the host key the seed handed in.
        let run = try ToolRunner.run(wisp, ["run", "--rm", "--name", "arm", "--memory", "1536M", "--timeout", "1500", image,
                                            "--", "sh", "-c", "uname -m; id -un; exit 5"], environment: environment)
        let user = ProcessInfo.processInfo.environment["USER"].flatMap { $0.isEmpty || $0 == "root" ? nil : $0 } ?? "wisp"
        #expect(run.status == 5, "\(run.stderrText)")
        #expect(run.stdoutText == "aarch64\n\(user)\n")
        // An emulated foreign guest is said once, on stderr.
        #expect(run.stderrText.components(separatedBy: "emulating it with TCG").count == 2)
        print("aarch64 TCG boot + command: \(Int(-started.timeIntervalSinceNow)) s")
        #expect(!FileManager.default.fileExists(atPath: dir.file("data") + "/wisp/instances/arm"))
    }
}
