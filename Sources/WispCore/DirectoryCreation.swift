#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `mkdir -p` that fails with a `WispError` naming the path: FileManager's version throws a
/// Foundation error whose text (`NSCocoaErrorDomain Code=516 ... NSFilePath=...`) reached
/// users as it was (issue 16). An existing directory is fine; an existing file of another
/// kind is `.alreadyExists`.
public enum DirectoryCreation {
    /// Creates `path` and any missing parents with `mode` (less the umask).
    public static func createDirectories(_ path: String, mode: mode_t = 0o755) throws {
        guard !path.isEmpty else { throw WispError.invalidArgument("an empty path is not a directory") }
        if isDirectory(path) { return }
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, mode) != 0 {
                let code = errno
                guard code == EEXIST else { throw WispError.posix("creating the directory", prefix, errno: code) }
                guard isDirectory(prefix) else {
                    throw WispError(.alreadyExists, "\(prefix): exists and is not a directory", errno: EEXIST)
                }
            }
            prefix += "/"
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }
}
