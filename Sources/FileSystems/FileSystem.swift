import WispCore

public enum FileType: String, Sendable, Codable, Equatable {
    case regular, directory, symlink, characterDevice, blockDevice, fifo, socket, unknown

    /// From the S_IFMT bits of a POSIX mode.
    public init(mode: UInt32) {
        switch mode & 0o170000 {
        case 0o100000: self = .regular
        case 0o040000: self = .directory
        case 0o120000: self = .symlink
        case 0o020000: self = .characterDevice
        case 0o060000: self = .blockDevice
        case 0o010000: self = .fifo
        case 0o140000: self = .socket
        default: self = .unknown
        }
    }
}

public struct Timestamp: Sendable, Codable, Equatable, Comparable {
    public var seconds: Int64
    public var nanoseconds: UInt32

    public init(seconds: Int64, nanoseconds: UInt32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static func < (a: Timestamp, b: Timestamp) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }
}

/// What `stat` says about a file, in POSIX terms whatever the filesystem.
public struct FileStat: Sendable, Codable, Equatable {
    public var inode: UInt64
    public var type: FileType
    /// Permission bits including setuid/setgid/sticky (mode & 0o7777).
    public var permissions: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: UInt64
    public var linkCount: UInt32
    public var accessTime: Timestamp
    public var modificationTime: Timestamp
    public var changeTime: Timestamp
    /// For character and block devices.
    public var deviceMajor: UInt32
    public var deviceMinor: UInt32

    public init(inode: UInt64, type: FileType, permissions: UInt32, uid: UInt32 = 0, gid: UInt32 = 0,
                size: UInt64, linkCount: UInt32 = 1, accessTime: Timestamp = Timestamp(seconds: 0),
                modificationTime: Timestamp = Timestamp(seconds: 0), changeTime: Timestamp = Timestamp(seconds: 0),
                deviceMajor: UInt32 = 0, deviceMinor: UInt32 = 0) {
        self.inode = inode
        self.type = type
        self.permissions = permissions
        self.uid = uid
        self.gid = gid
        self.size = size
        self.linkCount = linkCount
        self.accessTime = accessTime
        self.modificationTime = modificationTime
        self.changeTime = changeTime
        self.deviceMajor = deviceMajor
        self.deviceMinor = deviceMinor
    }

    /// The full POSIX mode: type bits | permissions.
    public var mode: UInt32 {
        let typeBits: UInt32
        switch type {
        case .regular: typeBits = 0o100000
        case .directory: typeBits = 0o040000
        case .symlink: typeBits = 0o120000
        case .characterDevice: typeBits = 0o020000
        case .blockDevice: typeBits = 0o060000
        case .fifo: typeBits = 0o010000
        case .socket: typeBits = 0o140000
        case .unknown: typeBits = 0
        }
        return typeBits | (permissions & 0o7777)
    }
}

public struct DirectoryEntry: Sendable, Codable, Equatable {
    public var name: String
    public var inode: UInt64
    /// From the directory entry where the filesystem records it (ext4 filetype, XFS ftype);
    /// nil means "stat the inode to know".
    public var type: FileType?

    public init(name: String, inode: UInt64, type: FileType?) {
        self.name = name
        self.inode = inode
        self.type = type
    }
}

/// A read-only filesystem reader over a `BlockDevice`. Inodes are the reader's own numbers
/// (ext4 inode numbers, XFS inode numbers, btrfs objectids within one subvolume, FAT
/// directory-entry positions); paths are resolved on top by `FileSystem+Paths.swift`.
/// Directory listings never include "." and "..".
public protocol FileSystem: AnyObject, Sendable {
    /// "ext4", "xfs", "btrfs", "vfat", "iso9660".
    var typeName: String { get }
    var label: String? { get }
    var uuid: String? { get }
    var rootInode: UInt64 { get }

    func stat(inode: UInt64) throws -> FileStat
    func list(directory inode: UInt64) throws -> [DirectoryEntry]
    /// Reads up to `count` bytes at `offset`; returns fewer only at end of file.
    func read(inode: UInt64, offset: UInt64, count: Int) throws -> [UInt8]
    func readlink(inode: UInt64) throws -> String
    /// Extended attributes by full name ("user.foo", "security.selinux"); empty where the
    /// filesystem has none.
    func xattrs(inode: UInt64) throws -> [String: [UInt8]]
}
