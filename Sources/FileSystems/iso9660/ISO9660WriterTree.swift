import WispCore

/// A small in-memory file tree that the filesystem writers (`ISO9660Writer`, `FATWriter`)
/// turn into an image: a cloud-init seed, an ESP payload. Names are Unicode strings; each
/// writer encodes them for its format (Rock Ridge / Joliet / 8.3 + long names) and rejects
/// what its format cannot hold with a clear error rather than writing a broken image.
///
/// (It lives in ISO9660WriterTree.swift because both writers share it and the ISO writer
/// came first.)
public struct WriterTree: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public enum Content: Sendable, Equatable {
            case file([UInt8])
            case directory([Entry])
            case symlink(String)
        }

        public var name: String
        public var content: Content
        /// Permission bits (mode & 0o7777); the type comes from `content`.
        public var permissions: UInt32

        public init(name: String, content: Content, permissions: UInt32) {
            self.name = name
            self.content = content
            self.permissions = permissions
        }

        public static func file(_ name: String, _ bytes: [UInt8], permissions: UInt32 = 0o644) -> Entry {
            Entry(name: name, content: .file(bytes), permissions: permissions)
        }

        public static func directory(_ name: String, _ children: [Entry], permissions: UInt32 = 0o755) -> Entry {
            Entry(name: name, content: .directory(children), permissions: permissions)
        }

        public static func symlink(_ name: String, target: String) -> Entry {
            Entry(name: name, content: .symlink(target), permissions: 0o777)
        }
    }

    public var entries: [Entry]

    public init(_ entries: [Entry]) { self.entries = entries }

    /// Limits that keep a hostile or mistaken tree from exhausting memory or recursing forever.
    public static let maximumDepth = 32
    public static let maximumEntries = 100_000
    public static let maximumNameBytes = 255

    /// Checks what every format needs: names that are non-empty, not `.`/`..`, free of `/` and
    /// NUL, at most 255 UTF-8 bytes, unique in their directory; bounded depth and count.
    public func validate(source: String) throws {
        var count = 0
        try Self.validate(entries, path: "", depth: 1, count: &count, source: source)
    }

    private static func validate(_ entries: [Entry], path: String, depth: Int, count: inout Int, source: String) throws {
        guard depth <= maximumDepth else {
            throw WispError.invalidArgument("\(source): directory \(path) is nested deeper than \(maximumDepth) levels")
        }
        var seen = Set<String>()
        for entry in entries {
            count += 1
            guard count <= maximumEntries else {
                throw WispError.invalidArgument("\(source): more than \(maximumEntries) files and directories")
            }
            let name = entry.name
            guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.utf8.contains(0) else {
                throw WispError.invalidArgument("\(source): \(path)/ holds an entry named \"\(name)\", which is empty, '.', '..' or contains '/' or NUL")
            }
            guard name.utf8.count <= maximumNameBytes else {
                throw WispError.invalidArgument("\(source): name \(path)/\(name.prefix(40))... is \(name.utf8.count) bytes long; at most \(maximumNameBytes) are allowed")
            }
            guard seen.insert(name).inserted else {
                throw WispError.invalidArgument("\(source): \(path)/\(name) appears twice")
            }
            if case .directory(let children) = entry.content {
                try validate(children, path: path + "/" + name, depth: depth + 1, count: &count, source: source)
            }
        }
    }
}

/// A UTC calendar date, computed without the local time zone so images are reproducible.
struct CivilTime: Equatable {
    var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int

    /// Days-from-civil inverse (H. Hinnant's algorithm), valid for any Int64 second count.
    init(secondsSinceEpoch t: Int64) {
        let days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400)
        let secs = Int(t - days * 86400)
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        year = Int(yoe + era * 400 + (m <= 2 ? 1 : 0))
        month = Int(m)
        day = Int(d)
        hour = secs / 3600
        minute = secs / 60 % 60
        second = secs % 60
    }
}
