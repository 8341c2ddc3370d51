#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore

/// The content-addressed blob cache: `<root>/blobs/sha256/<hex>`, by default under
/// `$XDG_CACHE_HOME/wisp/oci`. A blob appears only whole and verified (written beside its
/// final name, checked against its digest and size, then renamed), so whatever is in the
/// store may be used without hashing it again; a blob shared by several images is stored
/// once.
public struct OCIBlobStore: Sendable, Equatable {
    public let root: String

    public init(root: String) { self.root = root }

    /// `$XDG_CACHE_HOME/wisp/oci` (or `~/.cache/wisp/oci`).
    public static var defaultRoot: String {
        let environment = ProcessInfo.processInfo.environment
        if let cache = environment["XDG_CACHE_HOME"], cache.hasPrefix("/") { return "\(cache)/wisp/oci" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return "\(home)/.cache/wisp/oci"
    }

    var blobDirectory: String { "\(root)/blobs/sha256" }

    public func path(of digest: OCIDigest) -> String { "\(blobDirectory)/\(digest.hex)" }

    /// True when the blob is stored (with `size` bytes, when given).
    public func contains(_ digest: OCIDigest, size: Int64? = nil) -> Bool {
        var info = stat()
        guard stat(path(of: digest), &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
        return size.map { Int64(info.st_size) == $0 } ?? true
    }

    func create() throws {
        do {
            try DirectoryCreation.createDirectories(blobDirectory)
        } catch {
            throw WispError(.io, "\(blobDirectory): could not create the OCI blob cache: \(error)", cause: error)
        }
        // Blobs a killed pull left half-stored, whichever blob the next pull needs.
        AbandonedWork.sweepTemporaries(in: blobDirectory)
    }

    /// Stores a blob: `produce` writes its bytes into the writer (it may `restart()` it, as
    /// a download that resumes from zero does), then the bytes must have `expected`'s size
    /// and digest or nothing is kept. With no expectation (docker-archive layers, which have
    /// no descriptor) the blob is stored under the digest its bytes have. Returns the digest.
    @discardableResult
    func ingest(expected: OCIDescriptor?, source: String, diffID: DiffIDCheck? = nil,
                _ produce: (OCIBlobWriter) async throws -> Void) async throws -> OCIDigest {
        if let expected, contains(expected.digest, size: expected.size) { return expected.digest }
        try create()
        let target = expected.map { path(of: $0.digest) } ?? "\(blobDirectory)/incoming"
        // A blob's size is in its descriptor: a full disk is found before the transfer.
        let output = try AtomicOutput(path: target, permissions: 0o444, expectedSize: expected.map { UInt64(max(0, $0.size)) })
        let writer = OCIBlobWriter(file: output.file, limit: expected.map { UInt64(max(0, $0.size)) }, source: source)
        writer.diffID = diffID
        do {
            try await produce(writer)
            let digest = writer.digester.finalize()
            if let expected {
                guard writer.written == UInt64(max(0, expected.size)) else {
                    throw WispError(.digestMismatch, "\(source): blob \(expected.digest) has \(writer.written) bytes, its descriptor says \(expected.size) (nothing was cached)")
                }
                guard digest == expected.digest else {
                    throw WispError(.digestMismatch, "\(source): blob expected \(expected.digest), got \(digest) (nothing was cached)")
                }
                if let failure = writer.diffIDFailure { throw failure }
                try diffID?.finish()
                try output.commit()
            } else {
                if let failure = writer.diffIDFailure { throw failure }
                try diffID?.finish()
                // Named by its content only now: moved to its digest's name by hand, as
                // AtomicOutput renames to the name it was made with.
                if contains(digest) {
                    output.discard()
                } else {
                    try output.file.sync()
                    guard rename(output.temporaryPath, path(of: digest)) == 0 else {
                        throw WispError.posix("rename", path(of: digest), errno: errno)
                    }
                    output.discard()
                }
            }
            return digest
        } catch {
            output.discard()
            throw error
        }
    }

    /// Reads a small stored blob (a manifest, index or config) whole.
    func readDocument(_ digest: OCIDigest, source: String) throws -> [UInt8] {
        let file = try PosixFile(path: path(of: digest), mode: .readOnly)
        defer { file.close() }
        let size = try file.size()
        guard size <= UInt64(OCIDocumentLimits.maxDocumentBytes) else {
            throw WispError.corrupt(source, "document \(digest)", "\(size) bytes is more than the \(OCIDocumentLimits.maxDocumentBytes)-byte limit")
        }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        try bytes.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        return bytes
    }

    /// Removes temporaries left by pulls that died more than an hour ago.
    public func sweepStaleTemporaries() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: blobDirectory) else { return }
        let cutoff = Date().addingTimeInterval(-3600)
        for name in names where name.hasPrefix(".") && name.contains(".tmp-") {
            let path = "\(blobDirectory)/\(name)"
            if let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date, modified < cutoff {
                unlink(path)
            }
        }
    }
}

/// Where a blob's bytes go while they arrive: the temporary file, hashed on the way, and
/// never more than the descriptor's size (a server sending more is cut off at once).
final class OCIBlobWriter: @unchecked Sendable {
    let file: PosixFile
    let limit: UInt64?
    let source: String
    private(set) var digester = SHA256Digester()
    var diffID: DiffIDCheck?
    var diffIDFailure: Error?
    private(set) var written: UInt64 = 0

    init(file: PosixFile, limit: UInt64?, source: String) {
        self.file = file
        self.limit = limit
        self.source = source
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        let end = written.addingReportingOverflow(UInt64(bytes.count))
        if let limit, end.overflow || end.partialValue > limit {
            throw WispError(.digestMismatch, "\(source): the blob is longer than the \(limit) bytes its descriptor says (nothing was cached)")
        }
        try file.write(bytes, at: written)
        digester.update(bytes)
        // A decompression error is kept, not thrown: when the blob's own digest is wrong
        // too, that is the failure to report (checked first, at the end).
        if diffIDFailure == nil {
            do { try diffID?.observe(bytes) } catch { diffIDFailure = error }
        }
        written = end.partialValue
    }

    /// Starts over from byte 0 (a server that ignored a Range request sends everything).
    func restart() throws {
        try file.truncate(to: 0)
        digester = SHA256Digester()
        diffID?.restart()
        diffIDFailure = nil
        written = 0
    }
}
