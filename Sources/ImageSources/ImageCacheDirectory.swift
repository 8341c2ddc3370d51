import Foundation
import OCI
import WispCore

/// The directory downloaded images live in (`$XDG_CACHE_HOME/wisp/images`). Entries are
/// written atomically (a failed or unverified download leaves nothing) and never modified.
public struct ImageCacheDirectory: Sendable, Equatable {
    public let path: String

    public init(path: String) { self.path = path }

    /// Makes the directory, and removes what a killed Wisp left in it (temporaries whose
    /// writer is gone: see `AbandonedWork`).
    public func create() throws {
        do {
            try DirectoryCreation.createDirectories(path)
        } catch {
            throw WispError(.io, "\(path): could not create the image cache directory: \(error.localizedDescription)", cause: error)
        }
        AbandonedWork.sweepTemporaries(in: path)
    }

    /// The SHA-256 of a file, read in 1 MiB pieces (libcrypto, as downloads are hashed).
    static func sha256(of path: String) throws -> String {
        let file = try PosixFile(path: path, mode: .readOnly)
        defer { file.close() }
        let size = try file.size()
        let hasher = SHA256Digester()
        try file.forEachPiece(upTo: size) { hasher.update($0) }
        return hasher.finalize().hex
    }

    /// Throws `.digestMismatch` unless the file at `path` hashes to `expected`.
    static func verify(_ path: String, expected: String) throws {
        let actual = try sha256(of: path)
        guard actual == expected else {
            throw WispError(.digestMismatch, "\(path) has sha256:\(actual), expected sha256:\(expected)")
        }
    }
}
