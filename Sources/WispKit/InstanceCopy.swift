#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore

/// `wisp cp`: files and directory trees between the host and a running instance, over the
/// instance's SSH (its own key, its host key checked strictly).
///
/// tar over ssh rather than scp or sftp: tar keeps modes, symlinks (scp -r follows them),
/// empty directories and names with spaces or newlines as they are, and streams a whole
/// tree through one connection; scp's legacy protocol hands remote paths to the remote shell
/// (spaces need a second quoting), and neither tool can write the result beside its target
/// and rename it into place. On each side the tree is unpacked into a temporary directory
/// next to DST and renamed to DST, so an interrupted copy never leaves a half-written DST;
/// the extracting user owns the files (`--no-same-owner`), their modes are kept (`-p`).
public struct InstanceCopy: Sendable {
    /// One side of a copy: the host's filesystem or an instance's.
    public enum Location: Sendable, Equatable {
        case host(String)
        case instance(name: String, path: String)

        /// `NAME:PATH` names an instance when NAME is a valid instance name and comes before
        /// any '/' (a host path with a colon is written ./a:b or /abs/a:b).
        public static func parse(_ text: String) -> Location {
            if let colon = text.firstIndex(of: ":") {
                let name = String(text[..<colon])
                if !name.contains("/"), (try? InstanceStore.validate(name: name)) != nil {
                    let path = String(text[text.index(after: colon)...])
                    return .instance(name: name, path: path.isEmpty ? "." : path)
                }
            }
            return .host(text)
        }
    }

    public var store: InstanceStore

    public init(store: InstanceStore = InstanceStore()) { self.store = store }

    /// The remote side's own failures, told apart from ssh's 255 and tar's 1 and 2.
    static let remoteNotFoundStatus: Int32 = 3

    public func copy(from source: Location, to destination: Location) throws {
        switch (source, destination) {
        case (.host, .host):
            throw WispError.usage("wisp cp: one of SRC and DST must be in an instance, written NAME:PATH (e.g. web:/etc/hosts)")
        case (.instance, .instance):
            throw WispError.usage("wisp cp: copying between two instances is not supported; copy to the host and from there")
        case (.host(let local), .instance(let name, let remote)):
            try upload(local, to: remote, in: try ssh(name))
        case (.instance(let name, let remote), .host(let local)):
            try download(remote, in: try ssh(name), to: local)
        }
    }

    private func ssh(_ name: String) throws -> InstanceSSH {
        let record = try store.load(name)
        let files = store.files(name)
        let (state, _) = InstanceState.probe(files)
        guard state == .running else {
            throw WispError(.failed, "instance \(name) is \(state.rawValue), not running: wisp cp needs its SSH (wisp start \(name))")
        }
        return InstanceSSH(record: record, files: files)
    }

    private func upload(_ local: String, to remote: String, in ssh: InstanceSSH) throws {
        var info = stat()
        guard lstat(local, &info) == 0 else {
            throw WispError.notFound("wisp cp: \(local): no such file or directory on the host")
        }
        let absolute = URL(fileURLWithPath: local).standardizedFileURL
        let parent = absolute.deletingLastPathComponent().path
        let base = absolute.lastPathComponent
        let q = InstanceSSH.shellQuote
        // In the guest: into DST when it is a directory (as cp -r), else unpacked beside DST
        // and renamed to it.
        let script = """
            set -e; dst=\(q(remote)); name=\(q(base))
            if [ -d "$dst" ]; then exec tar -x -p --no-same-owner -f - -C "$dst"; fi
            parent=$(dirname -- "$dst")
            [ -d "$parent" ] || { echo "no such directory in the guest: $parent" >&2; exit \(Self.remoteNotFoundStatus); }
            t=$(mktemp -d "$parent/.wisp-cp.XXXXXX"); trap 'rm -rf "$t"' EXIT
            tar -x -p --no-same-owner -f - -C "$t"
            mv -T -- "$t/$name" "$dst"
            """
        let tar = try HostCommands.tool("tar")
        let result = try Self.pipeline(
            producer: (tar, ["-c", "-f", "-", "-C", parent, "--", base]),
            consumer: (try HostCommands.ssh(), ssh.arguments() + InstanceSSH.remoteCommand([script])))
        if result.producerStatus != 0 {
            throw WispError(.failed, "wisp cp: tar could not read \(local) on the host: \(result.producerError)")
        }
        try Self.check(result.consumerStatus, result.consumerError, side: "guest", instance: ssh.record.name, path: remote)
    }

    private func download(_ remote: String, in ssh: InstanceSSH, to local: String) throws {
        let q = InstanceSSH.shellQuote
        let script = """
            src=\(q(remote))
            [ -e "$src" ] || [ -L "$src" ] || { echo "no such file or directory in the guest: $src" >&2; exit \(Self.remoteNotFoundStatus); }
            cd -- "$(dirname -- "$src")" && exec tar -c -f - -- "$(basename -- "$src")"
            """
        let destination = URL(fileURLWithPath: local).standardizedFileURL
        var isDirectory: ObjCBool = false
        let intoDirectory = FileManager.default.fileExists(atPath: destination.path, isDirectory: &isDirectory) && isDirectory.boolValue
        let parent = intoDirectory ? destination.path : destination.deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw WispError.notFound("wisp cp: \(parent): no such directory on the host")
        }
        // Unpacked in a temporary directory beside the target, then renamed into place.
        var template = Array("\(parent)/.wisp-cp.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw WispError.posix("mkdtemp", parent, errno: errno) }
        let staging = String(cString: made)
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let tar = try HostCommands.tool("tar")
        let result = try Self.pipeline(
            producer: (try HostCommands.ssh(), ssh.arguments() + InstanceSSH.remoteCommand([script])),
            consumer: (tar, ["-x", "-p", "--no-same-owner", "-f", "-", "-C", staging]))
        try Self.check(result.producerStatus, result.producerError, side: "guest", instance: ssh.record.name, path: remote)
        if result.consumerStatus != 0 {
            throw WispError(.failed, "wisp cp: tar could not write into \(parent) on the host: \(result.consumerError)")
        }
        guard let name = try FileManager.default.contentsOfDirectory(atPath: staging).first else {
            throw WispError(.failed, "wisp cp: the guest sent nothing for \(remote)")
        }
        let target = intoDirectory ? "\(destination.path)/\(name)" : destination.path
        guard rename("\(staging)/\(name)", target) == 0 else {
            let code = errno
            if code == ENOTEMPTY || code == EEXIST || code == EISDIR {
                throw WispError(.alreadyExists, "wisp cp: \(target) already exists and cannot be replaced by \(remote) (a non-empty directory, or a directory and a file): remove it first")
            }
            throw WispError.posix("rename", target, errno: code)
        }
    }

    /// ssh's 255 is the connection; the guest script's own status is a missing path.
    private static func check(_ status: Int32, _ stderr: String, side: String, instance: String, path: String) throws {
        switch status {
        case 0: return
        case remoteNotFoundStatus: throw WispError.notFound("wisp cp: \(instance):\(path): \(stderr.isEmpty ? "not found in the guest" : stderr)")
        case 255: throw WispError(.connectionClosed, "wisp cp: could not reach \(instance) over SSH: \(stderr)")
        default: throw WispError.processFailed("wisp cp: the copy failed in the \(side) (exit \(status)): \(stderr)", status: status)
        }
    }

    struct PipelineResult {
        var producerStatus: Int32
        var producerError: String
        var consumerStatus: Int32
        var consumerError: String
    }

    /// producer | consumer, each one's stderr collected while they run (a full stderr pipe
    /// must never stall them).
    static func pipeline(producer: (String, [String]), consumer: (String, [String])) throws -> PipelineResult {
        let first = Process(), second = Process()
        first.executableURL = URL(fileURLWithPath: producer.0)
        first.arguments = producer.1
        second.executableURL = URL(fileURLWithPath: consumer.0)
        second.arguments = consumer.1
        let data = Pipe(), firstError = Pipe(), secondError = Pipe()
        first.standardInput = FileHandle.nullDevice
        first.standardOutput = data
        first.standardError = firstError
        second.standardInput = data
        second.standardOutput = FileHandle.nullDevice
        second.standardError = secondError
        let errors = LockedValue<[Int: Data]>([:])
        let group = DispatchGroup()
        for (index, pipe) in [firstError, secondError].enumerated() {
            group.enter()
            DispatchQueue.global().async {
                let bytes = pipe.fileHandleForReading.readDataToEndOfFile()
                errors.withLock { $0[index] = bytes }
                group.leave()
            }
        }
        try first.run()
        do { try second.run() } catch {
            first.terminate()
            first.waitUntilExit()
            throw error
        }
        // Only the children hold the data pipe now: EOF reaches the consumer when the
        // producer ends, and the producer gets EPIPE if the consumer dies.
        try? data.fileHandleForReading.close()
        try? data.fileHandleForWriting.close()
        first.waitUntilExit()
        second.waitUntilExit()
        group.wait()
        let text = errors.withLock { $0 }.mapValues { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
        return PipelineResult(producerStatus: first.terminationStatus, producerError: text[0] ?? "",
                              consumerStatus: second.terminationStatus, consumerError: text[1] ?? "")
    }
}
