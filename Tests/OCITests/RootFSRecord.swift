#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore
import WispTestSupport
@testable import OCI

/// What the tests compare per path: kind, owner, mode, mtime, xattrs, contents' SHA-256,
/// link target, device numbers, and the other names of the same file (hard links).
struct RootFSRecord: Equatable, CustomStringConvertible {
    var kind: String
    var permissions: UInt16
    var uid: UInt32
    var gid: UInt32
    /// nil where the judge cannot tell (directories, whose mtimes unpacking disturbs).
    var mtime: RootFSTimestamp?
    var xattrs: [String: [UInt8]]
    var size: UInt64 = 0
    var sha256: String?
    var links: [String] = []

    var description: String {
        "\(kind) \(String(permissions, radix: 8)) \(uid):\(gid) mtime \(mtime.map { "\($0.seconds).\($0.nanoseconds)" } ?? "-") size \(size) sha \(sha256?.prefix(12) ?? "-") xattrs \(xattrs.keys.sorted()) links \(links)"
    }
}

/// A sink that records the merged tree as `RootFSRecord`s (checking the emission order on
/// the way: parents first, hard links after their targets).
struct RecordingSink: RootFSSink {
    var records: [String: RootFSRecord] = [:]
    var order: [String] = []
    /// The link count each inode was announced with, by its first name.
    var announcedLinks: [String: Int] = [:]
    private var groups: [String: [String]] = [:]

    mutating func directory(_ path: RootFSPath, metadata: RootFSMetadata) throws {
        try expectParent(path)
        records[path.description] = record("dir", metadata)
        order.append(path.description)
    }

    mutating func file(_ path: RootFSPath, metadata: RootFSMetadata, size: UInt64, links: Int, contents: RootFSFileContents) throws {
        try expectParent(path)
        announcedLinks[path.description] = links
        let digester = SHA256Digester()
        var position: UInt64 = 0
        let zeros = [UInt8](repeating: 0, count: 1 << 16)
        func pad(to offset: UInt64) {
            while position < offset {
                let n = Int(min(UInt64(zeros.count), offset - position))
                zeros.withUnsafeBytes { digester.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                position += UInt64(n)
            }
        }
        try contents.forEachBlock { offset, bytes in
            precondition(offset >= position, "blocks out of order")
            pad(to: offset)
            digester.update(bytes)
            position += UInt64(bytes.count)
        }
        pad(to: size)
        var entry = record("file", metadata)
        entry.size = size
        entry.sha256 = digester.finalize().hex
        records[path.description] = entry
        order.append(path.description)
    }

    mutating func symlink(_ path: RootFSPath, target: [UInt8], metadata: RootFSMetadata, links: Int) throws {
        try expectParent(path)
        announcedLinks[path.description] = links
        var entry = record("symlink -> \(String(decoding: target, as: UTF8.self))", metadata)
        entry.permissions = 0  // symlink modes mean nothing on Linux
        records[path.description] = entry
        order.append(path.description)
    }

    mutating func special(_ path: RootFSPath, kind: RootFSSpecialFile, metadata: RootFSMetadata, links: Int) throws {
        try expectParent(path)
        announcedLinks[path.description] = links
        let name = switch kind {
        case .characterDevice(let major, let minor): "char \(major),\(minor)"
        case .blockDevice(let major, let minor): "block \(major),\(minor)"
        case .fifo: "fifo"
        }
        records[path.description] = record(name, metadata)
        order.append(path.description)
    }

    mutating func hardLink(_ path: RootFSPath, target: RootFSPath) throws {
        try expectParent(path)
        guard let base = records[target.description] else { throw WispError(.failed, "hard link \(path) before its target \(target)") }
        records[path.description] = base
        groups[target.description, default: [target.description]].append(path.description)
        order.append(path.description)
    }

    private func expectParent(_ path: RootFSPath) throws {
        guard !path.isRoot else { return }
        let parent = RootFSPath(components: Array(path.components.dropLast()))
        guard records[parent.description]?.kind == "dir" else { throw WispError(.failed, "\(path) emitted before its directory \(parent)") }
    }

    private func record(_ kind: String, _ metadata: RootFSMetadata) -> RootFSRecord {
        RootFSRecord(kind: kind, permissions: metadata.permissions, uid: metadata.uid, gid: metadata.gid,
                     mtime: kind == "dir" ? nil : metadata.modificationTime,
                     xattrs: Dictionary(uniqueKeysWithValues: metadata.xattrs.map { ($0.name, $0.value) }))
    }

    /// Records with their hard-link groups filled in (the announced link counts checked).
    func finished() -> [String: RootFSRecord] {
        for (first, count) in announcedLinks {
            precondition(count == (groups[first]?.count ?? 1), "\(first) announced \(count) links, got \(groups[first]?.count ?? 1)")
        }
        var result = records
        for members in groups.values {
            for member in members { result[member]?.links = members.sorted() }
        }
        return result
    }
}

/// The same records read from a directory tree on this machine (what umoci unpacked).
enum HostTree {
    static func records(_ root: String) throws -> [String: RootFSRecord] {
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
    static func xattrs(under root: String) throws -> [String: [String: [UInt8]]] {
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

enum ImageHash {
    static func sha256(_ path: String) throws -> String {
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

/// Pulls `reference` into `store` and merges it, returning the image, the merged tree and
/// its records.
func pullAndRecord(_ reference: String, store: OCIBlobStore, options: OCIPullOptions = OCIPullOptions()) async throws
    -> (OCIPulledImage, MergedRootFS, [String: RootFSRecord]) {
    let image = try await OCIPuller(store: store, options: options).pull(try OCIReference.parse(reference))
    let merged = try MergedRootFS.build(layers: image.layers)
    var sink = RecordingSink()
    try merged.emit(into: &sink)
    return (image, merged, sink.finished())
}

/// The paths where two record sets differ, one line each.
func differences(_ ours: [String: RootFSRecord], _ judge: [String: RootFSRecord]) -> [String] {
    var lines: [String] = []
    for path in Set(ours.keys).union(judge.keys).sorted() where ours[path] != judge[path] {
        lines.append("\(path.isEmpty ? "/" : path):\n  ours:  \(ours[path].map { "\($0)" } ?? "absent")\n  judge: \(judge[path].map { "\($0)" } ?? "absent")")
    }
    return lines
}
