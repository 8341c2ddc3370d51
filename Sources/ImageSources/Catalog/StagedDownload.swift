import Foundation
import WispCore

/// A download into the cache's staging area (`catalog/.staging/`), resumed with an HTTP
/// Range request after a cut connection, a Ctrl-C or a killed Wisp: the partial file stays
/// there (never visible as an image) until the download completes and is verified.
struct StagedDownload {
    let url: URL
    let partPath: String
    let algorithm: ChecksumAlgorithm
    var stallSeconds = 0
    /// Attempts after a cut connection before giving up.
    var retries = 5
    /// The most bytes a catalog download may have (docs/RELIABILITY.md): a server that sends
    /// no Content-Length, or a larger one, cannot fill the disk. Settable for tests.
    var maxBytes: UInt64 = StagedDownload.defaultMaxBytes
    static let defaultMaxBytes: UInt64 = 64 << 30
    /// Told the part file's size after each write (and 0 when it is started again).
    var onWrite: (@Sendable (UInt64) -> Void)?

    struct Result {
        /// The digest of the downloaded bytes in the published algorithm.
        var digest: String
        var size: UInt64
        /// How many requests asked for a range (resumed the file).
        var resumed: Int
    }

    /// Downloads (or finishes downloading) the file and returns its digest. The partial
    /// file is kept on a cut, a stall or a server error (so a later run resumes it), and
    /// removed when the disk is full or the download passes `maxBytes` (nothing to resume).
    func run(progress: (@Sendable (UInt64, UInt64?) -> Void)?, announce: (@Sendable (String) -> Void)?) async throws -> Result {
        var resumed = 0
        var attempt = 0
        while true {
            let file = try openPart()
            defer { file.close() }
            let digester = try ChecksumDigester(algorithm)
            let start = try hashExisting(file, into: digester)
            if start > 0 {
                resumed += 1
                announce?("resuming \(url.lastPathComponent) at \(ByteSize.format(start))")
            }
            var written = start
            let report = onWrite
            var shifted: (@Sendable (UInt64, UInt64?) -> Void)?
            if let progress {
                shifted = { done, total in progress(start + done, total.map { start + $0 }) }
            }
            let part = partPath
            let cap = maxBytes
            let link = url.absoluteString
            var exceeded = false
            let overCap = { (size: UInt64) in
                WispError(.invalidArgument, "\(link): the download passes \(ByteSize.format(size)) and a catalog image may have at most \(ByteSize.format(cap)); the partial file was removed")
            }
            let sink = BodySink(progress: shifted, spaceCheck: { (total: UInt64) throws -> Void in
                guard start <= cap, total <= cap - start else { exceeded = true; throw overCap(start + min(total, UInt64.max - start)) }
                try DiskSpace.require(total, for: part, what: "the download (\(ByteSize.format(total)))", alreadyHeld: 0)
            }, receive: { (bytes: UnsafeRawBufferPointer) throws -> Void in
                guard UInt64(bytes.count) <= cap, written <= cap - UInt64(bytes.count) else { exceeded = true; throw overCap(written + UInt64(bytes.count)) }
                try file.write(bytes, at: written)
                digester.update(bytes)
                written += UInt64(bytes.count)
                report?(written)
            })
            do {
                try await HTTPDownload.get(url, from: start, stallSeconds: stallSeconds, sink: sink)
                try file.sync()
                return Result(digest: digester.finalize(), size: written, resumed: resumed)
            } catch let error as WispError where error.kind == .noSpace || exceeded {
                // A full disk or an over-long body: keeping the part would only hold the space.
                file.close()
                unlink(partPath)
                onWrite?(0)
                throw error
            } catch let error as WispError where error.kind == .unsupported && start > 0 {
                // The server ignores ranges: start over rather than append a whole body.
                try file.truncate(to: 0)
                onWrite?(0)
                attempt += 1
            } catch let error as WispError where (error.kind == .connectionClosed || error.kind == .io) && attempt < retries {
                attempt += 1
                announce?("\(url.lastPathComponent): the connection was cut at \(ByteSize.format(written)); resuming")
                try await Task.sleep(nanoseconds: UInt64(min(attempt, 4)) * 250_000_000)
            }
            if attempt > retries { throw WispError(.failed, "\(url.absoluteString): download failed after \(retries) attempts") }
        }
    }

    func openPart() throws -> PosixFile {
        let directory = URL(fileURLWithPath: partPath).deletingLastPathComponent().path
        try DirectoryCreation.createDirectories(directory)
        if !FileManager.default.fileExists(atPath: partPath) {
            let created = try PosixFile(path: partPath, mode: .createExclusive(permissions: 0o600))
            created.close()
        }
        return try PosixFile(path: partPath, mode: .readWrite)
    }

    /// Hashes what an earlier attempt left, so the digest covers the whole file.
    func hashExisting(_ file: PosixFile, into digester: ChecksumDigester) throws -> UInt64 {
        let size = try file.size()
        try file.forEachPiece(upTo: size) { digester.update($0) }
        return size
    }
}
