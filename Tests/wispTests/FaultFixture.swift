import Foundation
import Machine
import WispCore
import WispTestSupport

/// What the fault tests share: a `wisp` environment of its own (data and cache under one
/// scratch directory), a small tmpfs to fill, and a way to kill `wisp` at a known point.
struct FaultBox {
    let dir: TemporaryDirectory
    var dataHome: String
    var cacheHome: String

    init(_ label: String) throws {
        dir = try TemporaryDirectory(label)
        dataHome = dir.file("data")
        cacheHome = dir.file("cache")
    }

    var environment: [String: String] {
        ["XDG_DATA_HOME": dataHome, "XDG_CACHE_HOME": cacheHome, "HOME": dir.path]
    }

    var instancesDirectory: String { dataHome + "/wisp/instances" }

    func wisp(_ arguments: [String]) throws -> ToolResult {
        try WispBinary.run(arguments, environment: environment)
    }

    /// `wisp list --json` as name → state.
    func states() throws -> [String: String] {
        let listed = try WispBinary.check(["list", "--json"], environment: environment)
        let rows = (try JSONSerialization.jsonObject(with: listed.stdout) as? [[String: Any]]) ?? []
        var states: [String: String] = [:]
        for row in rows { if let name = row["name"] as? String { states[name] = row["state"] as? String } }
        return states
    }

    /// An empty qcow2 to boot through firmware: QEMU runs (OVMF finds nothing to boot and
    /// waits), which is all the instance faults need; no guest is booted.
    func blankDisk(_ name: String = "blank.qcow2", size: String = "64M") throws -> String {
        let path = dir.file(name)
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", path, size])
        return path
    }

    /// `wisp run` of `image` through firmware, returning once QEMU runs.
    func runDetached(_ image: String, name: String) throws -> ToolResult {
        try wisp(["run", "--boot", "uefi", "--detach", "--accel", "tcg", "--memory", "256M", "--cpus", "1", "--name", name, image])
    }
}

/// Every name under `path`, hidden ones too, relative to it (what a user could find left).
func allEntries(_ path: String) -> [String] {
    guard let enumerator = FileManager.default.enumerator(atPath: path) else { return [] }
    return (enumerator.allObjects as? [String] ?? []).sorted()
}

/// Names an interrupted atomic output or staging directory would leave.
func leftovers(_ path: String) -> [String] {
    allEntries(path).filter { entry in
        let leaf = (entry as NSString).lastPathComponent
        return leaf.contains(".tmp-") || leaf.contains(".new-") || leaf.hasPrefix(".staging-") || leaf.hasPrefix(".new-staging-")
    }
}

func sha256(_ path: String) throws -> String {
    try ToolRunner.check("sha256sum", [path]).stdoutText.split(separator: " ").first.map(String.init) ?? ""
}

/// A tmpfs of `bytes` mounted on a fresh directory: the full disk the space faults write
/// to. Mounting needs root (the tests run as root in CI and on the build machine); without
/// it the test fails saying so rather than passing unchecked.
final class SmallFilesystem {
    let path: String
    private var mounted = false

    init(at path: String, bytes: Int) throws {
        guard getuid() == 0 else {
            throw WispError(.permissionDenied, "the full-disk tests mount a small tmpfs, which needs root (run the wispTests as root)")
        }
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try ToolRunner.check("mount", ["-t", "tmpfs", "-o", "size=\(bytes),mode=0755", "wisp-fault-test", path])
        mounted = true
    }

    /// Fills the filesystem until only about `free` bytes remain.
    func fill(leaving free: Int) throws {
        guard let available = DiskSpace.available(near: path), available > UInt64(free) else { return }
        let filler = FileManager.default.createFile(atPath: path + "/filler", contents: Data(count: Int(available) - free))
        if !filler { throw WispError(.failed, "\(path): could not write the filler file") }
    }

    func unmount() {
        guard mounted else { return }
        mounted = false
        _ = try? ToolRunner.run("umount", ["-l", path])
    }

    deinit { unmount() }
}

/// `wisp ARGUMENTS` run under strace with every fsync held for a minute, killed with
/// SIGKILL once one of its threads sits in fsync: the moment an output (a converted image,
/// a seed, an overlay, a download, a blob) is complete in its temporary file and about to
/// be renamed into place. Deterministic, where a kill after a sleep would race the work.
func killWispAtFirstFsync(_ arguments: [String], environment: [String: String]) throws {
    #if arch(x86_64)
    let fsyncNumber = "74"
    #elseif arch(arm64)
    let fsyncNumber = "82"
    #endif
    guard let strace = ToolRunner.locate("strace") else { throw WispError.notFound("strace: not installed (scripts/setup installs it)") }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: strace)
    process.arguments = ["-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync", "-e", "inject=fsync:delay_enter=60000000",
                         try WispBinary.path()] + arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    process.standardInput = FileHandle.nullDevice
    try process.run()
    defer { process.waitUntilExit() }
    let deadline = Date().addingTimeInterval(120)
    // Looked up afresh each time, by name: strace forks short-lived children of its own at
    // startup (probing what ptrace supports) before it runs wisp.
    func wisp() -> Int32? {
        children(of: process.processIdentifier).first { pid in
            (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) == "wisp"
        }
    }
    while Date() < deadline, process.isRunning {
        if let pid = wisp(), threadsInSyscall(pid).contains(fsyncNumber) {
            kill(pid, SIGKILL)
            // strace would sit out the rest of its injected delay before noticing: the
            // tracee has its SIGKILL, so strace (our own child) goes too.
            usleep(200_000)
            kill(process.processIdentifier, SIGKILL)
            return
        }
        usleep(20_000)
    }
    let pid = wisp()
    let seen = pid.map { "pid \($0), in system calls \(threadsInSyscall($0))" } ?? "no wisp process under strace"
    let exited = process.isRunning ? "still running" : "exited with \(process.terminationStatus)"
    if let pid { kill(pid, SIGKILL) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    throw WispError(.failed, "wisp \(arguments.joined(separator: " ")) never reached fsync (\(seen); strace \(exited))")
}

private func children(of pid: Int32) -> [Int32] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    return tasks.flatMap { task -> [Int32] in
        let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? ""
        return text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}

/// The system call number each thread of `pid` is in (first field of /proc/.../syscall).
private func threadsInSyscall(_ pid: Int32) -> [String] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    return tasks.compactMap { task in
        (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/syscall", encoding: .utf8))?.split(separator: " ").first.map(String.init)
    }
}
