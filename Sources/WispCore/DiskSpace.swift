#if canImport(Glibc)
import Glibc
#endif

/// Free space on the filesystem that will hold an output, checked before the work starts
/// where the size is known (a download's Content-Length, a blob's descriptor, a convert's
/// allocated data), so a full disk is reported in a second with the numbers, not after
/// minutes of work; and the sentence for a write that ran out of space anyway.
public enum DiskSpace {
    /// Bytes an unprivileged writer may still use on the filesystem holding `path` (the
    /// path itself, or its directory when the path does not exist yet); nil when statvfs
    /// cannot say.
    public static func available(near path: String) -> UInt64? {
        var info = statvfs()
        if statvfs(path, &info) != 0 {
            guard statvfs(directory(of: path), &info) == 0 else { return nil }
        }
        let (bytes, overflow) = UInt64(info.f_bavail).multipliedReportingOverflow(by: UInt64(info.f_frsize))
        return overflow ? UInt64.max : bytes
    }

    /// Throws `.noSpace` when the filesystem that will hold `path` has fewer than `bytes`
    /// free. `what` says what the bytes are ("the converted image", "the download").
    /// `alreadyHeld`: bytes of the output already written, which count as room it has.
    public static func require(_ bytes: UInt64, for path: String, what: String, alreadyHeld: UInt64 = 0) throws {
        guard let available = available(near: path) else { return }
        let free = available.addingReportingOverflow(alreadyHeld).overflow ? UInt64.max : available + alreadyHeld
        guard free < bytes else { return }
        throw WispError(.noSpace, "\(path): \(what) needs about \(ByteSize.format(bytes)) but the filesystem holding it has only \(ByteSize.format(free)) free; nothing was written (free some space or choose another place)")
    }

    /// The error for a write of `length` bytes at `offset` into `path` that hit ENOSPC or
    /// EDQUOT: the space needed is at least the end of that write (more when `expected`,
    /// the whole output's size, is known).
    public static func exhausted(_ path: String, offset: UInt64, length: Int, expected: UInt64?, errno code: Int32) -> WispError {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(length))
        let needed = max(overflow ? UInt64.max : end, expected ?? 0)
        let free = available(near: path).map { ", \(ByteSize.format($0)) free" } ?? ""
        return WispError(.noSpace, "\(path): the filesystem holding it is full (needs at least \(ByteSize.format(needed))\(free)); nothing was kept", errno: code)
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
