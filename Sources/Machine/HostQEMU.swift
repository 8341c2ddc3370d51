#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore

/// Finds on this host what a board needs to run: its QEMU binary and its UEFI firmware,
/// with one clear sentence when either is missing.
public enum HostQEMU {
    /// `WISP_QEMU` when set (it must be executable), else the board's binary on PATH or in
    /// /usr/bin, /usr/local/bin.
    public static func executable(for board: any Board,
                                  environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let custom = environment["WISP_QEMU"], !custom.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: custom) else {
                throw WispError.notFound("WISP_QEMU=\(custom) is not an executable QEMU")
            }
            return custom
        }
        // Strings, not Substrings: `split(...) + ["/usr/bin"]` infers an array of character
        // collections whose elements interpolate as "["/", "u", ...]", so no PATH entry matched.
        let path = environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"] {
            let candidate = "\(dir)/\(board.qemuBinary)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw WispError.notFound("\(board.qemuBinary) is not installed: install it (Debian: apt-get install \(board.qemuPackage), or run scripts/setup)")
    }

    /// Whether `executable` was built with seccomp: `-sandbox` is parsed (and refused by a
    /// build without it) before `-version` prints and exits.
    public static func supportsSandbox(_ executable: String) -> Bool {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in [0, 1, 2] {
            posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
        }
        let words: [String] = [executable, "-sandbox", "on", "-version"]
        let argv = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, executable, &actions, nil, argv, environ) == 0 else { return false }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status == 0
    }

    /// The board's first firmware build whose code and vars template both exist. `root`
    /// prefixes every candidate path (tests lay out a distribution's tree in a directory).
    public static func firmware(for board: any Board, root: String = "") throws -> UEFIFirmwareFiles {
        let search = board.firmware
        for candidate in search.candidates {
            let found = UEFIFirmwareFiles(code: root + candidate.code, varsTemplate: root + candidate.varsTemplate)
            if FileManager.default.fileExists(atPath: found.code) && FileManager.default.fileExists(atPath: found.varsTemplate) {
                return found
            }
        }
        throw WispError.notFound("UEFI firmware (\(search.name)) is not installed and this image needs it: install it (Debian: apt-get install \(search.package))")
    }
}
