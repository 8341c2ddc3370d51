#if canImport(Glibc)
import Glibc
#endif
import WispCore

/// Unbuffered writes to the standard streams, so large `cat` output streams straight
/// through and errors are not lost in a buffer.
enum FileOutput {
    static func write(_ bytes: [UInt8], to fd: Int32, name: String) throws {
        try bytes.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                guard let base = buffer.baseAddress else { return }
                let n = Glibc.write(fd, base + done, buffer.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw WispError.posix("write", name, errno: errno)
                }
                done += n
            }
        }
    }

    static func standardOutput(_ text: String) {
        try? write(Array(text.utf8), to: 1, name: "standard output")
    }

    static func standardError(_ text: String) {
        try? write(Array(text.utf8), to: 2, name: "standard error")
    }
}
