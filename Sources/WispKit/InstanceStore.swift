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
            throw WispError.corrupt(files.record, "instance record", "not a valid instance.json: \(ForeignErrorTranslation.sentence(error))")
        }
    }

    public func save(_ record: InstanceRecord) throws {
        let data = try Self.encoder.encode(record)
        try AtomicOutput.write(Array(data), to: files(record.name).record, permissions: 0o600)
    }

    /// Claims `name` by creating its directory (mkdir is atomic: two runs can't both get it).
    /// Without a requested name, `base`, `base-2`, `base-3`, ... is tried in turn.
    public func claim(requested: String?, base: String) throws -> String {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        if let requested {
            try Self.validate(name: requested)
            guard mkdir("\(root)/\(requested)", 0o700) == 0 else {
                if errno == EEXIST { throw WispError(.alreadyExists, "an instance named \(requested) already exists (wisp rm \(requested), or choose another --name)") }
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
