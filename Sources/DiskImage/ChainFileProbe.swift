#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import WispCore

/// A read-only descriptor on a file `BackingChain.resolve` is judging, seen as a
/// `BlockDevice` so the format probe and header parsers can read it. Opened non-blocking:
/// a FIFO put in place of a checked file must not hang the resolver (for regular files and
/// block devices the flag changes nothing).
final class ChainFileProbe: BlockDevice, @unchecked Sendable {
    let name: String
    let size: UInt64
    let identity: BackingChain.FileIdentity
    let fileType: BackingChain.FileType
    var isReadOnly: Bool { true }
    private let descriptor: Int32

    /// Opens `path`; `followSymlinks: false` for canonical paths, where a symlink can only
    /// mean the file was swapped since it was resolved.
    init(path: String, name: String, followSymlinks: Bool) throws {
        var flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC
        if !followSymlinks { flags |= O_NOFOLLOW }
        let fd = open(path, flags)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw WispError.notFound("\(name): no such file") }
            if code == EACCES || code == EPERM {
                throw WispError(.permissionDenied, "\(name): cannot be read (\(String(cString: strerror(code))))", errno: code)
            }
            throw WispError.posix("open", name, errno: code)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let code = errno
            _ = close(fd)
            throw WispError.posix("fstat", name, errno: code)
        }
        descriptor = fd
        self.name = name
        identity = BackingChain.FileIdentity(st)
        fileType = BackingChain.FileType(mode: st.st_mode)
        if fileType == .blockDevice {
            let end = lseek(fd, 0, SEEK_END)
            size = end > 0 ? UInt64(end) : 0
        } else {
            size = st.st_size > 0 ? UInt64(st.st_size) : 0
        }
    }

    deinit { _ = close(descriptor) }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset: offset, count: UInt64(buffer.count), what: "read")
        guard let base = buffer.baseAddress else { return }
        var done = 0
        while done < buffer.count {
            let n = pread(descriptor, base + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw WispError.posix("read", name, errno: errno)
            }
            if n == 0 {
                // Shorter than it was a moment ago: what is missing reads as zeros, as
                // with every other file Wisp reads.
                (base + done).initializeMemory(as: UInt8.self, repeating: 0, count: buffer.count - done)
                return
            }
            done += n
        }
    }

    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        throw WispError.invalidArgument("\(name): opened read-only")
    }

    func flush() throws {}

    func allocationMap(offset: UInt64, length: UInt64) throws -> [AllocationExtent] {
        try checkRange(offset: offset, count: length, what: "allocation map")
        return length == 0 ? [] : [AllocationExtent(offset: offset, length: length, kind: .data)]
    }
}
