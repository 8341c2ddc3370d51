#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OCI
import WispCore

/// What the tests compare per path: kind, owner, mode, mtime, xattrs, contents' SHA-256,
/// link target, device numbers, and the other names of the same file (hard links).
public struct RootFSRecord: Equatable, CustomStringConvertible, Sendable {
    public var kind: String
    public var permissions: UInt16
    public var uid: UInt32
    public var gid: UInt32
    /// nil where the judge cannot tell (directories, whose mtimes unpacking disturbs).
    public var mtime: RootFSTimestamp?
    public var xattrs: [String: [UInt8]]
    public var size: UInt64 = 0
    public var sha256: String?
    public var links: [String] = []

    public var description: String {
        "\(kind) \(String(permissions, radix: 8)) \(uid):\(gid) mtime \(mtime.map { "\($0.seconds).\($0.nanoseconds)" } ?? "-") size \(size) sha \(sha256?.prefix(12) ?? "-") xattrs \(xattrs.keys.sorted()) links \(links)"
    }
    public init(kind: String, permissions: UInt16, uid: UInt32, gid: UInt32, mtime: RootFSTimestamp?, xattrs: [String: [UInt8]],
                size: UInt64 = 0, sha256: String? = nil, links: [String] = []) {
        self.kind = kind
        self.permissions = permissions
        self.uid = uid
        self.gid = gid
        self.mtime = mtime
        self.xattrs = xattrs
        self.size = size
        self.sha256 = sha256
        self.links = links
    }
}

/// The same records read from a directory tree on this machine (what umoci unpacked).
public enum HostTree {
    public static func records(_ root: String) throws -> [String: RootFSRecord] {
        var records: [String: RootFSRecord] = [:]
        let attributes = try xattrs(under: root)
        var inodes: [UInt64: [String]] = [:]
        func visit(_ relative: String) throws {
            let full = relative.isEmpty ? root : "\(root)/\(relative)"
            var info = stat()
            guard lstat(full, &info) == 0 else { throw WispError.posix("lstat", full, errno: errno) }
            let type = info.st_mode & S_IFMT
            var record = RootFSRecord(kind: "", permissions: UInt16(info.st_mode & 0o7777), uid: info.st_uid, gid: info.st_gid,
                                      mtime: RootFSTimestamp(seconds: Int64(info.st_mtim.tv_sec), nanoseconds: UInt32(info.st_mtim.tv_nsec)),
                                      xattrs: attributes[relative] ?? [:])
            switch type {
            case S_IFDIR:
                record.kind = "dir"
                record.mtime = nil
            case S_IFREG:
                record.kind = "file"
                record.size = UInt64(info.st_size)
                record.sha256 = try ImageHash.sha256(full)
            case S_IFLNK:
                var buffer = [CChar](repeating: 0, count: 8192)
                let n = readlink(full, &buffer, buffer.count)
                record.kind = "symlink -> \(String(decoding: buffer[0..<max(0, n)].map { UInt8(bitPattern: $0) }, as: UTF8.self))"
                record.permissions = 0
            case S_IFCHR: record.kind = "char \(major(info.st_rdev)),\(minor(info.st_rdev))"
            case S_IFBLK: record.kind = "block \(major(info.st_rdev)),\(minor(info.st_rdev))"
            case S_IFIFO: record.kind = "fifo"
            default: record.kind = "other"
            }
            if type != S_IFDIR && info.st_nlink > 1 { inodes[UInt64(info.st_ino), default: []].append(relative) }
            records[relative] = record
            if type == S_IFDIR {
                for name in try FileManager.default.contentsOfDirectory(atPath: full).sorted() {
                    try visit(relative.isEmpty ? name : "\(relative)/\(name)")
                }
            }
        }
        try visit("")
        for members in inodes.values where members.count > 1 {
            for member in members { records[member]?.links = members.sorted() }
        }
        return records
    }

    /// Every extended attribute under `root`, by path relative to it, from the real getfattr.
    public static func xattrs(under root: String) throws -> [String: [String: [UInt8]]] {
        let out = try ToolRunner.run("getfattr", ["-R", "-P", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", root])
        var result: [String: [String: [UInt8]]] = [:]
        var current: String?
        for line in out.stdoutText.split(separator: "\n") {
            if line.hasPrefix("# file: ") {
                let path = String(line.dropFirst("# file: ".count))
                current = path == root ? "" : String(path.dropFirst(root.count + 1))
            } else if let current, let equals = line.firstIndex(of: "=") {
                let hex = line[line.index(after: equals)...].dropFirst(2)
                var bytes: [UInt8] = []
                var index = hex.startIndex
                while index < hex.endIndex, let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) {
                    bytes.append(UInt8(hex[index..<next], radix: 16) ?? 0)
                    index = next
                }
                result[current, default: [:]][String(line[..<equals])] = bytes
            }
        }
        return result
    }

    private static func major(_ dev: dev_t) -> UInt32 { UInt32(((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfff)) }
    private static func minor(_ dev: dev_t) -> UInt32 { UInt32((dev & 0xff) | ((dev >> 12) & ~0xff)) }
}

public enum ImageHash {
    public static func sha256(_ path: String) throws -> String {
        let file = try PosixFile(path: path, mode: .readOnly)
        defer { file.close() }
        let size = try file.size()
        let digester = SHA256Digester()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: UInt64 = 0
        while offset < size {
            let n = Int(min(UInt64(buffer.count), size - offset))
            try buffer.withUnsafeMutableBytes { try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), at: offset) }
            buffer.withUnsafeBytes { digester.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            offset += UInt64(n)
        }
        return digester.finalize().hex
    }
}

/// The paths where two record sets differ, one line each.
public func differences(_ ours: [String: RootFSRecord], _ judge: [String: RootFSRecord]) -> [String] {
    var lines: [String] = []
    for path in Set(ours.keys).union(judge.keys).sorted() where ours[path] != judge[path] {
        lines.append("\(path.isEmpty ? "/" : path):\n  ours:  \(ours[path].map { "\($0)" } ?? "absent")\n  judge: \(judge[path].map { "\($0)" } ?? "absent")")
    }
    return lines
}
