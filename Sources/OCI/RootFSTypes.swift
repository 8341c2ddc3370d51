/// A path inside the merged root filesystem: its bytes (tar names need not be UTF-8),
/// relative to the root, components joined by `/`, no leading slash; the root itself is
/// the empty path.
public struct RootFSPath: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ text: String) { bytes = Array(text.utf8) }

    init(components: [[UInt8]]) {
        var joined: [UInt8] = []
        for (i, component) in components.enumerated() {
            if i > 0 { joined.append(UInt8(ascii: "/")) }
            joined += component
        }
        bytes = joined
    }

    public var isRoot: Bool { bytes.isEmpty }

    public var components: [[UInt8]] {
        bytes.split(separator: UInt8(ascii: "/")).map(Array.init)
    }

    /// The path as text (invalid UTF-8 shown with replacement characters), for messages.
    public var description: String { String(decoding: bytes, as: UTF8.self) }

    public static func < (a: RootFSPath, b: RootFSPath) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

/// Seconds and nanoseconds since the epoch (tar PAX headers carry nanoseconds).
public struct RootFSTimestamp: Sendable, Hashable, Comparable {
    public var seconds: Int64
    public var nanoseconds: UInt32

    public init(seconds: Int64, nanoseconds: UInt32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static func < (a: RootFSTimestamp, b: RootFSTimestamp) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }
}

/// One extended attribute (`security.capability`, `security.selinux`, `user.*`, ...).
public struct RootFSXattr: Sendable, Hashable {
    public var name: String
    public var value: [UInt8]

    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }
}

/// What every entry carries besides its kind.
public struct RootFSMetadata: Sendable, Hashable {
    /// Permission bits with setuid (0o4000), setgid (0o2000) and sticky (0o1000); no type bits.
    public var permissions: UInt16
    public var uid: UInt32
    public var gid: UInt32
    public var modificationTime: RootFSTimestamp
    /// Sorted by name.
    public var xattrs: [RootFSXattr]

    public init(permissions: UInt16, uid: UInt32, gid: UInt32, modificationTime: RootFSTimestamp, xattrs: [RootFSXattr] = []) {
        self.permissions = permissions
        self.uid = uid
        self.gid = gid
        self.modificationTime = modificationTime
        self.xattrs = xattrs
    }

    /// A directory that no layer described but that must exist (a parent of an entry).
    public static let implicitDirectory = RootFSMetadata(permissions: 0o755, uid: 0, gid: 0, modificationTime: RootFSTimestamp(seconds: 0))
}

/// Device nodes and FIFOs (sockets do not travel in layers).
public enum RootFSSpecialFile: Sendable, Hashable {
    case characterDevice(major: UInt32, minor: UInt32)
    case blockDevice(major: UInt32, minor: UInt32)
    case fifo
}

/// The merged tree's totals, known after pass 1, so a writer can size its filesystem before
/// any content arrives.
public struct RootFSSummary: Sendable, Hashable {
    public var directories = 0
    /// Distinct regular files (inodes); extra names of the same file are `hardLinks`.
    public var regularFiles = 0
    public var symlinks = 0
    public var specialFiles = 0
    /// Names beyond the first of a file with several (hard links).
    public var hardLinks = 0
    /// Logical bytes of all distinct regular files (sparse holes included).
    public var fileBytes: UInt64 = 0
    /// Bytes of symlink targets and xattr names and values, for metadata sizing.
    public var metadataBytes: UInt64 = 0

    /// Every name in the tree, the root included.
    public var entryCount: Int { directories + regularFiles + symlinks + specialFiles + hardLinks }

    public init() {}
}
