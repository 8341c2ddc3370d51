#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore

/// A download being written, read by the unpacker at the same time: reads wait for bytes
/// the download has not written yet, end when it finishes, and fail when it fails (the
/// caller then unpacks the finished file instead).
final class GrowingFile: @unchecked Sendable {
    let path: String
    private let file: PosixFile
    private let state = LockedValue<(available: UInt64, finished: Bool, failed: Bool)>((0, false, false))
    private var offset: UInt64 = 0
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)

    init(path: String) throws {
        self.path = path
        file = try PosixFile(path: path, mode: .readOnly)
    }

    deinit {
        file.close()
        buffer.deallocate()
    }

    /// The download has written up to `size`. A size going back (a restart) is a failure.
    func advance(to size: UInt64) {
        state.withLock { state in
            if size < state.available { state.failed = true } else { state.available = size }
        }
    }

    func finish() { state.withLock { $0.finished = true } }
    func fail() { state.withLock { $0.failed = true } }

    /// libarchive's read callback: bytes, 0 at the end, -1 on failure.
    func read(_ out: UnsafeMutablePointer<UnsafeRawPointer?>) -> Int {
        while true {
            let now = state.withLock { $0 }
            if now.failed { return -1 }
            if offset < now.available {
                let n = Int(min(UInt64(buffer.count), now.available - offset))
                do {
                    try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]), at: offset)
                } catch {
                    return -1
                }
                offset += UInt64(n)
                out.pointee = UnsafeRawPointer(buffer.baseAddress)
                return n
            }
            if now.finished { return 0 }
            usleep(2_000)
        }
    }
}
