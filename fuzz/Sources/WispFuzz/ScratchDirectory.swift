#if canImport(Glibc)
import Glibc
#endif
import WispCore

/// A private directory on tmpfs for parsers whose public entry point takes a path (image
/// files and their backing chains, OVAs, tar archives). Each input rewrites the files it
/// uses and removes the others, so nothing of one input leaks into the next.
enum ScratchDirectory {
    static let path: String = {
        let base = getenv("WISP_FUZZ_SCRATCH").map { String(cString: $0) }
            ?? (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp")
        let dir = "\(base)/wisp-fuzz-\(getpid())"
        mkdir(dir, 0o700)
        atexit { ScratchDirectory.removeAll() }
        return dir
    }()

    nonisolated(unsafe) private static var written: Set<String> = []

    /// Writes `files` (name → bytes) into the directory, removing files earlier inputs left.
    /// Returns the directory path.
    @discardableResult
    static func populate(_ files: [(String, [UInt8])]) -> String {
        let dir = path
        let names = Set(files.map(\.0))
        for stale in written.subtracting(names) { unlink("\(dir)/\(stale)") }
        for (name, bytes) in files {
            let fd = open("\(dir)/\(name)", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { reportToStderr("wisp-fuzz: cannot write \(dir)/\(name)\n"); abort() }
            var done = 0
            bytes.withUnsafeBytes { raw in
                while done < raw.count {
                    let n = write(fd, raw.baseAddress! + done, raw.count - done)
                    if n <= 0 { reportToStderr("wisp-fuzz: short write to \(dir)/\(name)\n"); abort() }
                    done += n
                }
            }
            close(fd)
        }
        written = names
        return dir
    }

    static func removeAll() {
        for name in written { unlink("\(path)/\(name)") }
        rmdir(path)
    }
}
