#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore

/// The instances under `$XDG_DATA_HOME/wisp/instances`, one owner-only directory each.
public struct InstanceStore: Sendable {
    public let paths: WispPaths

    public init(paths: WispPaths = WispPaths()) { self.paths = paths }

    public var root: String { paths.instances.path }

    public func files(_ name: String) -> InstanceFiles { InstanceFiles(directory: "\(root)/\(name)") }

    /// Instance names are directory names, host names and ssh aliases: keep them simple.
    public static func validate(name: String) throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        guard !name.isEmpty, name.count <= 48, name.lowercased().allSatisfy({ allowed.contains($0) }),
              name.first != "-", name.last != "-" else {
            throw WispError.usage("'\(name)' is not a valid instance name: use 1 to 48 letters, digits and '-', not starting or ending with '-'")
        }
    }

    public func names() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .filter { !$0.hasPrefix(".") }
            .sorted()
    }

    public func load(_ name: String) throws -> InstanceRecord {
        let files = files(name)
        guard FileManager.default.fileExists(atPath: files.directory) else {
            throw WispError.notFound("no instance named \(name) (see wisp list)")
        }
        guard let data = FileManager.default.contents(atPath: files.record) else {
            throw WispError.notFound("instance \(name) was never completely created (an interrupted wisp run): remove it with wisp rm \(name)")
        }
        do {
            return try Self.decoder.decode(InstanceRecord.self, from: data)
        } catch let error as WispError {
            throw error.prefixed(files.record)
        } catch {
            throw WispError.corrupt(files.record, "instance record", "not a valid instance.json (\(Self.describe(error))): wisp rm \(name) removes the instance")
        }
    }

    public func save(_ record: InstanceRecord) throws {
        let data = try Self.encoder.encode(record)
        try AtomicOutput.write(Array(data), to: files(record.name).record, permissions: 0o600)
    }

    /// The one sentence for a `--name` that a complete instance already has (said early by
    /// `wisp run`, before any download, and again when the name is claimed).
    static func nameTaken(_ name: String) -> WispError {
        WispError(.alreadyExists, "the name \(name) is taken: an instance named \(name) already exists (wisp rm \(name), or choose another --name)")
    }

    /// Claims a name by creating its directory (mkdir is atomic: two runs can't both get
    /// it) and returns it with the instance's lock held, which the creator keeps until the
    /// instance is complete and booted. Without a requested name, `base`, `base-2`, ... is
    /// tried in turn. A directory left by a creator that died (kill -9) before writing
    /// instance.json, whose lock nobody holds, is abandoned: it is removed and claimed
    /// again, so the same `wisp run` completes the second time and nothing stale stays.
    /// Claims go one at a time through a store-wide lock, so two claimers never both
    /// judge the same directory abandoned.
    public func claimLocked(requested: String?, base: String) throws -> (name: String, lock: InstanceLock) {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        if let requested { try Self.validate(name: requested) }
        let storeLock = try FileLock.exclusive("\(root)/.claim.lock")
        defer { storeLock.release() }
        if let requested {
            switch try attemptClaim(requested) {
            case .claimed(let lock): return (requested, lock)
            case .complete:
                throw InstanceStore.nameTaken(requested)
            case .beingCreated:
                throw WispError(.alreadyExists, "the name \(requested) is taken: another wisp command is creating an instance named \(requested) right now (choose another --name)")
            }
        }
        let cleanBase = Self.sanitize(base)
        for n in 1...1000 {
            let candidate = n == 1 ? cleanBase : "\(cleanBase)-\(n)"
            if case .claimed(let lock) = try attemptClaim(candidate) { return (candidate, lock) }
        }
        throw WispError(.alreadyExists, "too many instances named \(cleanBase)-N: choose a --name")
    }

    /// Claims a name without keeping its lock, for callers that write instance.json at once.
    public func claim(requested: String?, base: String) throws -> String {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        if let requested {
            try Self.validate(name: requested)
            guard mkdir("\(root)/\(requested)", 0o700) == 0 else {
                if errno == EEXIST { throw InstanceStore.nameTaken(requested) }
                throw WispError.posix("mkdir", "\(root)/\(requested)", errno: errno)
            }
            return requested
        }
        let cleanBase = Self.sanitize(base)
        for n in 1...1000 {
            let candidate = n == 1 ? cleanBase : "\(cleanBase)-\(n)"
            if mkdir("\(root)/\(candidate)", 0o700) == 0 { return candidate }
            guard errno == EEXIST else { throw WispError.posix("mkdir", "\(root)/\(candidate)", errno: errno) }
        }
        throw WispError(.alreadyExists, "too many instances named \(cleanBase)-N: choose a --name")
    }

    enum ClaimAttempt {
        case claimed(InstanceLock)
        /// instance.json is there (a complete instance, even if its record is damaged).
        case complete
        /// No instance.json yet, and a live process holds the lock.
        case beingCreated
    }

    /// One try at `name`, under the store-wide claim lock.
    func attemptClaim(_ name: String) throws -> ClaimAttempt {
        let instance = self.files(name)
        if mkdir(instance.directory, 0o700) != 0 {
            let code = errno
            guard code == EEXIST else { throw WispError.posix("mkdir", instance.directory, errno: code) }
            if FileManager.default.fileExists(atPath: instance.record) { return .complete }
            guard let stale = try? InstanceLock(path: instance.lock, name: name) else { return .beingCreated }
            // Abandoned by a creator that died: its partial files go, the name is free again.
            do {
                try FileManager.default.removeItem(atPath: instance.directory)
            } catch {
                stale.release()
                throw WispError(.io, "\(instance.directory): could not remove the instance an interrupted wisp run left: \(error.localizedDescription)", cause: error)
            }
            stale.release()
            guard mkdir(instance.directory, 0o700) == 0 else { throw WispError.posix("mkdir", instance.directory, errno: errno) }
        }
        return .claimed(try InstanceLock(path: instance.lock, name: name))
    }

    /// "Debian 12" / "debian-12-genericcloud-amd64.qcow2" → a valid instance name.
    public static func sanitize(_ text: String) -> String {
        var out = ""
        for c in text.lowercased() {
            if c.isASCII && (c.isLetter || c.isNumber) { out.append(c) } else if out.last != "-" { out.append("-") }
        }
        while out.hasSuffix("-") { out.removeLast() }
        while out.hasPrefix("-") { out.removeFirst() }
        if out.isEmpty { out = "vm" }
        return String(out.prefix(40))
    }

    public func remove(_ name: String) throws {
        let dir = files(name).directory
        guard FileManager.default.fileExists(atPath: dir) else { throw WispError.notFound("no instance named \(name) (see wisp list)") }
        try FileManager.default.removeItem(atPath: dir)
    }

    /// A decoding failure in a few words (Foundation's own description is a dump of coding
    /// paths and debug text).
    static func describe(_ error: any Error) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "the top level" : keys.joined(separator: ".")
        }
        switch error as? DecodingError {
        case .dataCorrupted(let context)?:
            return context.codingPath.isEmpty ? "the file is not JSON" : "a value at \(path(context)) is malformed"
        case .keyNotFound(let key, let context)?:
            return "\(key.stringValue) is missing at \(path(context))"
        case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?:
            return "the value at \(path(context)) has the wrong type"
        default:
            return "it cannot be decoded"
        }
    }

    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.dateEncodingStrategy = .iso8601
        return e
    }

    static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }
}
