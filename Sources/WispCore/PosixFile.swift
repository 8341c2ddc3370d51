#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLinux

/// A file descriptor with positional I/O and the sparse-file calls Wisp relies on
/// (SEEK_DATA/SEEK_HOLE, FALLOC_FL_PUNCH_HOLE). Positional calls keep no cursor, so one
/// instance may be used from many tasks at once.
public final class PosixFile: @unchecked Sendable {
    public let path: String
    /// The name errors give: the target of an `AtomicOutput`, not its hidden temporary.
    public let displayPath: String
    /// The whole output's size when known, so a full disk's error can say what was needed.
    public let expectedSize: UInt64?
    public let descriptor: Int32
    public let isReadOnly: Bool
    private var closed = false

    public enum Mode: Sendable {
        case readOnly
        case readWrite
        /// Create a new file; fails if it exists.
        case createExclusive(permissions: UInt32)
    }

    public init(path: String, mode: Mode, displayPath: String? = nil, expectedSize: UInt64? = nil) throws {
        self.path = path
        self.displayPath = displayPath ?? path
        self.expectedSize = expectedSize
        var flags: Int32 = O_CLOEXEC
        var perms: UInt32 = 0o644
        switch mode {
        case .readOnly: flags |= O_RDONLY
        case .readWrite: flags |= O_RDWR
        case .createExclusive(let p):
            flags |= O_RDWR | O_CREAT | O_EXCL
            perms = p
        }
        let fd = open(path, flags, perms)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw WispError.notFound("\(path): no such file") }
            throw WispError.posix("open", path, errno: code)
        }
        var st = stat()
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            _ = Glibc.close(fd)
            throw WispError.invalidArgument("\(path): is a directory")
        }
        self.descriptor = fd
        if case .readOnly = mode { isReadOnly = true } else { isReadOnly = false }
    }

    deinit {
        if !closed { _ = Glibc.close(descriptor) }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        _ = Glibc.close(descriptor)
    }

    /// Current size of the file in bytes (for a block device, its capacity).
    public func size() throws -> UInt64 {
        var st = stat()
        guard fstat(descriptor, &st) == 0 else { throw WispError.posix("fstat", path, errno: errno) }
        if (st.st_mode & S_IFMT) == S_IFBLK {
            let end = lseek(descriptor, 0, SEEK_END)
            guard end >= 0 else { throw WispError.posix("lseek", path, errno: errno) }
            return UInt64(end)
        }
        return UInt64(st.st_size)
    }

    /// Hands the first `length` bytes to `body` in pieces of `pieceSize`, in order: the one
    /// loop behind every "hash this file" (cached images, a resumed download's part, a saved
    /// machine state).
    public func forEachPiece(upTo length: UInt64, pieceSize: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var buffer = [UInt8](repeating: 0, count: max(1, pieceSize))
        var offset: UInt64 = 0
        while offset < length {
            let n = Int(min(UInt64(buffer.count), length - offset))
            try buffer.withUnsafeMutableBytes { try read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), at: offset) }
            try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            offset += UInt64(n)
        }
    }

    /// Reads exactly `buffer.count` bytes; bytes past end of file read as zeros, because a
    /// sparse or truncated tail of an image is defined to be zero.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < buffer.count {
            guard let base = buffer.baseAddress else { return }
            let n = pread(descriptor, base + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw WispError.posix("read", path, errno: errno)
            }
            if n == 0 {
                // End of file: the rest is zeros.
                (base + done).initializeMemory(as: UInt8.self, repeating: 0, count: buffer.count - done)
                return
            }
            done += n
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard !isReadOnly else { throw WispError(.io, "\(path): opened read-only") }
        var done = 0
        while done < buffer.count {
            guard let base = buffer.baseAddress else { return }
            let n = pwrite(descriptor, base + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == ENOSPC || code == EDQUOT {
                    throw DiskSpace.exhausted(displayPath, offset: offset, length: buffer.count, expected: expectedSize, errno: code)
                }
                throw WispError.posix("write", displayPath, errno: code)
            }
            done += n
        }
    }

    public func truncate(to size: UInt64) throws {
        guard ftruncate(descriptor, off_t(size)) == 0 else {
            throw WispError.posix("truncate", displayPath, errno: errno)
        }
    }

    public func sync() throws {
        guard fsync(descriptor) == 0 else { throw WispError.posix("fsync", displayPath, errno: errno) }
    }

    /// Deallocates a range so it reads as zeros. Returns false where the filesystem cannot
    /// punch holes (the caller then writes zeros if it must).
    @discardableResult
    public func punchHole(offset: UInt64, length: UInt64) -> Bool {
        guard length > 0 else { return true }
        return wisp_punch_hole(descriptor, off_t(offset), off_t(length)) == 0
    }

    /// The data and hole extents of `[offset, offset+length)` from SEEK_DATA/SEEK_HOLE.
    /// Filesystems without support report everything as data, which is always correct.
    public func dataExtents(offset: UInt64, length: UInt64) throws -> [AllocationExtent] {
        let end = offset + length
        let fileSize = try size()
        var extents: [AllocationExtent] = []
        func append(_ start: UInt64, _ stop: UInt64, _ kind: AllocationKind) {
            guard stop > start else { return }
            if let last = extents.last, last.kind == kind, last.end == start {
                extents[extents.count - 1].length += stop - start
            } else {
                extents.append(AllocationExtent(offset: start, length: stop - start, kind: kind))
            }
        }
        var position = offset
        let SEEK_DATA: Int32 = 3
        let SEEK_HOLE: Int32 = 4
        while position < end {
            if position >= fileSize {
                append(position, end, .hole)
                break
            }
            let data = lseek(descriptor, off_t(position), SEEK_DATA)
            if data < 0 {
                if errno == ENXIO {  // no data after position
                    append(position, end, .hole)
                    break
                }
                // EINVAL: not supported here.
                append(position, end, .data)
                break
            }
            let dataStart = min(UInt64(data), end)
            append(position, dataStart, .hole)
            if dataStart >= end { break }
            let hole = lseek(descriptor, off_t(dataStart), SEEK_HOLE)
            let holeStart = hole < 0 ? end : min(UInt64(hole), end)
            append(dataStart, holeStart, .data)
            position = holeStart
        }
        return extents
    }
}
