import Foundation

/// A scratch directory for one test's fixtures, removed when the value is released.
/// Lives under $TMPDIR (default /tmp) so fixtures never land in the repository.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String

    public init(_ label: String = "wisp-test") throws {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(base)/\(label)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> String? in
            guard let start = buffer.baseAddress, let result = mkdtemp(start) else { return nil }
            return String(cString: result)
        }
        guard let made else { throw CocoaError(.fileWriteUnknown) }
        path = made
    }

    /// `path/name`.
    public func file(_ name: String) -> String { "\(path)/\(name)" }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
