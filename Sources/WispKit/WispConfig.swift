import Foundation
import Machine
import WispCore
import CloudInit
import Yams

/// Defaults for `wisp run` from `$XDG_CONFIG_HOME/wisp/config.yaml`; a flag always wins.
///
///     cpus: 4
///     memory: 4G            # a bare number is MiB, as --memory
///     disk-size: 20G
///     ssh-keys: [~/.ssh/work.pub]
///     user: dev
///     accelerator: tcg
///     mounts: ["~/src:/src", "/data:/data:ro"]
///     mirrors: {debian: "https://mirror.example/debian-cloud/"}   # per catalog distribution
///
/// Unknown keys and bad values are errors naming the file and the key: a typo in a config
/// file must not silently fall back to a default.
public struct WispConfig: Sendable, Equatable {
    public var cpus: Int?
    public var memoryBytes: UInt64?
    public var diskSize: UInt64?
    public var sshKeys: [String]?
    public var user: String?
    public var accelerator: AcceleratorChoice?
    public var mounts: [String]?
    /// Catalog distribution → the URL that replaces its download root (`wisp run debian-13`).
    public var mirrors: [String: String]?
    /// The file these came from; nil when there is none.
    public var path: String?

    public init() {}

    public static let keys = ["cpus", "memory", "disk-size", "ssh-keys", "user", "accelerator", "mounts", "mirrors"]
    /// A config file is a few lines; a bigger one is not a config file.
    public static let maxBytes = 64 << 10

    public static func path(_ paths: WispPaths = WispPaths()) -> String {
        paths.configHome.appendingPathComponent("config.yaml").path
    }

    /// The config at the usual path, or an empty one when the file does not exist.
    public static func load(_ paths: WispPaths = WispPaths(), environment: [String: String] = ProcessInfo.processInfo.environment) throws -> WispConfig {
        let file = path(paths)
        guard FileManager.default.fileExists(atPath: file) else { return WispConfig() }
        guard let handle = FileHandle(forReadingAtPath: file) else { throw WispError(.permissionDenied, "\(file): cannot be read") }
        defer { try? handle.close() }
        let data = handle.readData(ofLength: maxBytes + 1)
        guard data.count <= maxBytes else { throw WispError(.invalidArgument, "\(file): larger than \(maxBytes / 1024) KiB, not a config file") }
        var config = try parse(String(decoding: data, as: UTF8.self), file: file, home: environment["HOME"] ?? NSHomeDirectory())
        config.path = file
        return config
    }

    /// `home` expands a leading `~/` in paths.
    public static func parse(_ text: String, file: String, home: String) throws -> WispConfig {
        var config = WispConfig()
        // The same bounds as every other YAML Wisp reads, checked before Yams composes it.
        let node = try YAMLPreflight.composeFile(text, file: file)
        guard let node else { return config }
        guard let mapping = node.mapping else { throw WispError(.invalidArgument, "\(file): expected a mapping of settings (key: value)") }
        func fail(_ key: String, _ what: String) -> WispError { WispError(.invalidArgument, "\(file): \(key): \(what)") }
        func scalar(_ key: String, _ value: Node) throws -> String {
            guard let text = value.scalar?.string else { throw fail(key, "expected a single value") }
            return text
        }
        func list(_ key: String, _ value: Node) throws -> [String] {
            if let one = value.scalar?.string { return [one] }
            guard let sequence = value.sequence else { throw fail(key, "expected a list") }
            return try sequence.map { try scalar(key, $0) }
        }
        func expand(_ path: String) -> String { path.hasPrefix("~/") ? home + path.dropFirst(1) : path }
        var seen = Set<String>()
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else { throw WispError(.invalidArgument, "\(file): keys must be plain words") }
            guard seen.insert(key).inserted else { throw fail(key, "given twice") }
            switch key {
            case "cpus":
                guard let cpus = Int(try scalar(key, value)), (1...256).contains(cpus) else { throw fail(key, "expected 1 to 256") }
                config.cpus = cpus
            case "memory":
                do { config.memoryBytes = try ByteSize.parseMemory(try scalar(key, value)) } catch let error as WispError { throw fail(key, error.message) }
                if let memory = config.memoryBytes, memory < 128 << 20 { throw fail(key, "at least 128M is needed to boot a cloud image") }
            case "disk-size":
                do { config.diskSize = try ByteSize.parse(try scalar(key, value)) } catch let error as WispError { throw fail(key, error.message) }
            case "ssh-keys":
                config.sshKeys = try list(key, value).map(expand)
            case "user":
                let user = try scalar(key, value)
                guard Self.isValidUserName(user) else { throw fail(key, "'\(user.prefix(40))' is not a valid login name (lower-case letters, digits, - and _, 32 at most)") }
                config.user = user
            case "accelerator":
                let text = try scalar(key, value)
                guard let accelerator = AcceleratorChoice(rawValue: text) else { throw fail(key, "'\(text.prefix(40))': expected auto, kvm or tcg") }
                config.accelerator = accelerator
            case "mounts":
                config.mounts = try list(key, value).map(expand)
            case "mirrors":
                guard let pairs = value.mapping else { throw fail(key, "expected a mapping of distribution: URL") }
                var mirrors: [String: String] = [:]
                for (name, url) in pairs {
                    guard let name = name.scalar?.string, let text = url.scalar?.string,
                          let parsed = URL(string: text), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                        throw fail(key, "expected distribution: http(s) URL")
                    }
                    mirrors[name] = text
                }
                config.mirrors = mirrors
            default:
                let hint = EditDistance.suggestion(for: key, among: keys).map { " (did you mean \($0)?)" } ?? ""
                throw WispError(.invalidArgument, "\(file): unknown setting '\(key.prefix(40))'\(hint); known: \(keys.joined(separator: ", "))")
            }
        }
        return config
    }

    /// A login name cloud-init and useradd accept.
    public static func isValidUserName(_ name: String) -> Bool {
        guard let first = name.first, name.count <= 32, first.isASCII, first.isLowercase || first == "_" else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == "_") } && name != "root"
    }
}
