import Foundation
import WispCore

/// The real Debian test image built by scripts/make-test-image (scripts/test exports its
/// path as WISP_TEST_IMAGE). Tests that need it fail loudly without it, never pass silently.
public enum TestImage {
    public static func path() throws -> String {
        guard let path = ProcessInfo.processInfo.environment["WISP_TEST_IMAGE"], !path.isEmpty else {
            throw WispError.notFound("WISP_TEST_IMAGE is not set: run the tests through scripts/test, or export WISP_TEST_IMAGE=$(scripts/make-test-image)")
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw WispError.notFound("WISP_TEST_IMAGE=\(path) does not exist: rebuild it with scripts/make-test-image")
        }
        return path
    }

    /// The repository root (for running scripts and the built `wisp` binary in tests).
    public static var repositoryRoot: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }
}
