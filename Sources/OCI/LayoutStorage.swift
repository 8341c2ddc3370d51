#if canImport(Glibc)
import Glibc
#endif
import WispCore

/// The files of an image layout or docker archive, whether a directory or a tar archive
/// read in place. Names are relative ("index.json", "blobs/sha256/HEX").
protocol LayoutStorage: Sendable {
    var name: String { get }
    /// Size of a regular file, nil when absent.
    func size(_ file: String) throws -> UInt64?
    /// Reads `length` bytes at `offset` of a file into `buffer`.
    func read(_ file: String, at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws
    /// Streams a file in 1 MiB pieces.
    func stream(_ file: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws
}

extension LayoutStorage {
    /// A small file whole (index.json, manifest.json, configs), refused past the document limit.
    func readDocument(_ file: String) throws -> [UInt8]? {
        guard let size = try size(file) else { return nil }
        guard size <= UInt64(OCIDocumentLimits.maxDocumentBytes) else {
            throw WispError.corrupt(name, file, "\(size) bytes is more than the \(OCIDocumentLimits.maxDocumentBytes)-byte limit")
        }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        try bytes.withUnsafeMutableBytes { try read(file, at: 0, into: $0) }
        return bytes
    }

    func stream(_ file: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let size = try size(file) else { throw WispError.notFound("\(name): \(file) is missing") }
        try streamPieces(size: size, read: { try read(file, at: $0, into: $1) }, body)
    }

    func streamPieces(size: UInt64, read: (UInt64, UnsafeMutableRawBufferPointer) throws -> Void,
                      _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: UInt64 = 0
        while offset < size {
            let n = Int(min(UInt64(buffer.count), size - offset))
            try buffer.withUnsafeMutableBytes { try read(offset, UnsafeMutableRawBufferPointer(rebasing: $0[0..<n])) }
            try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            offset += UInt64(n)
        }
    }
}

/// A layout directory on disk.
struct DirectoryStorage: LayoutStorage {
    let directory: String
    let name: String

    func size(_ file: String) throws -> UInt64? {
        var info = stat()
        guard stat("\(directory)/\(file)", &info) == 0 else { return nil }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return UInt64(info.st_size)
    }

    func read(_ file: String, at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        let handle = try PosixFile(path: "\(directory)/\(file)", mode: .readOnly)
        defer { handle.close() }
        try handle.read(into: buffer, at: offset)
    }

    /// One open for the whole file (not one per piece), and the size it had when opened.
    func stream(_ file: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard try size(file) != nil else { throw WispError.notFound("\(name): \(file) is missing") }
        let handle = try PosixFile(path: "\(directory)/\(file)", mode: .readOnly)
        defer { handle.close() }
        try streamPieces(size: try handle.size(), read: { try handle.read(into: $1, at: $0) }, body)
    }
}

/// An uncompressed tar archive, its members read in place.
final class TarStorage: LayoutStorage, @unchecked Sendable {
    let file: PosixFile
    let index: TarArchiveIndex
    let name: String

    init(path: String, name: String) throws {
        file = try PosixFile(path: path, mode: .readOnly)
        index = try TarArchiveIndex(file: file, source: name)
        self.name = name
    }

    deinit { file.close() }

    func size(_ member: String) throws -> UInt64? { index.member(member)?.size }

    func read(_ member: String, at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard let entry = index.member(member) else { throw WispError.notFound("\(name): \(member) is missing") }
        let end = offset.addingReportingOverflow(UInt64(buffer.count))
        guard !end.overflow, end.partialValue <= entry.size else {
            throw WispError.corrupt(name, member, "read past the member's \(entry.size) bytes")
        }
        try file.read(into: buffer, at: entry.offset + offset)
    }
}
