import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

/// Everything the writer must keep about one entry, as a reader reports it.
struct Ext4EntrySnapshot: Equatable, CustomStringConvertible {
    var type: FileType
    var permissions: UInt32
    var uid: UInt32
    var gid: UInt32
    /// Regular files and symlinks only (a directory's size is the writer's business).
    var size: UInt64?
    var accessTime: Timestamp
    var modificationTime: Timestamp
    var changeTime: Timestamp
    var xattrs: [String: [UInt8]]
    var target: String?
    var sha256: String?
    var deviceMajor: UInt32?
    var deviceMinor: UInt32?

    var description: String {
        "\(type) 0o\(String(permissions, radix: 8)) \(uid):\(gid) size \(size.map(String.init) ?? "-") "
            + "mtime \(modificationTime.seconds).\(modificationTime.nanoseconds) atime \(accessTime.seconds).\(accessTime.nanoseconds) "
            + "ctime \(changeTime.seconds).\(changeTime.nanoseconds) xattrs \(xattrs.keys.sorted()) "
            + "target \(target ?? "-") sha256 \(sha256 ?? "-") dev \(deviceMajor.map(String.init) ?? "-"):\(deviceMinor.map(String.init) ?? "-")"
    }
}

/// A whole tree read through a `FileSystem`, with which paths share an inode.
struct Ext4TreeSnapshot {
    var entries: [String: Ext4EntrySnapshot] = [:]
    /// Sets of two or more paths naming one non-directory inode.
    var linkGroups: Set<[String]> = []
    /// Regular files' inodes, for comparing contents directly.
    var fileInodes: [String: UInt64] = [:]

    /// `digests: false` leaves sha256 out (a debug-built SHA-256 over a whole root
    /// filesystem takes minutes); compare with `contentDifferences` instead.
    static func read(_ fs: any FileSystem, skipping skipped: Set<String> = [], digests: Bool = true) throws -> Ext4TreeSnapshot {
        var snapshot = Ext4TreeSnapshot()
        var pathsByInode: [UInt64: [String]] = [:]
        var pending: [(path: String, inode: UInt64)] = [("/", fs.rootInode)]
        while let (path, inode) = pending.popLast() {
            snapshot.entries[path] = try entry(fs, inode: inode, digest: digests)
            for child in try fs.list(directory: inode) {
                let childPath = path == "/" ? "/" + child.name : path + "/" + child.name
                if skipped.contains(childPath) { continue }
                if child.type == .directory {
                    pending.append((childPath, child.inode))
                } else {
                    let e = try entry(fs, inode: child.inode, digest: digests)
                    snapshot.entries[childPath] = e
                    if e.type == .regular { snapshot.fileInodes[childPath] = child.inode }
                    pathsByInode[child.inode, default: []].append(childPath)
                }
            }
        }
        snapshot.linkGroups = Set(pathsByInode.values.filter { $0.count > 1 }.map { $0.sorted() })
        return snapshot
    }

    static func entry(_ fs: any FileSystem, inode: UInt64, digest wantDigest: Bool = true) throws -> Ext4EntrySnapshot {
        let stat = try fs.stat(inode: inode)
        var entry = Ext4EntrySnapshot(type: stat.type, permissions: stat.permissions, uid: stat.uid, gid: stat.gid,
                                      size: nil, accessTime: stat.accessTime, modificationTime: stat.modificationTime,
                                      changeTime: stat.changeTime, xattrs: try fs.xattrs(inode: inode))
        switch stat.type {
        case .regular:
            entry.size = stat.size
            if wantDigest { entry.sha256 = try digest(fs, inode: inode, size: stat.size) }
        case .symlink:
            entry.size = stat.size
            entry.target = try fs.readlink(inode: inode)
        case .characterDevice, .blockDevice:
            entry.deviceMajor = stat.deviceMajor
            entry.deviceMinor = stat.deviceMinor
        default:
            break
        }
        return entry
    }

    static func digest(_ fs: any FileSystem, inode: UInt64, size: UInt64) throws -> String {
        var hasher = SHA256()
        var offset: UInt64 = 0
        while offset < size {
            let chunk = try fs.read(inode: inode, offset: offset, count: Int(min(size - offset, 4 << 20)))
            guard !chunk.isEmpty else { break }
            hasher.update(chunk)
            offset += UInt64(chunk.count)
        }
        return SHA256.hex(hasher.finalize())
    }

    static func digest(_ bytes: [UInt8]) -> String {
        var hasher = SHA256()
        hasher.update(bytes)
        return SHA256.hex(hasher.finalize())
    }

    /// Paths whose contents differ between this tree (in `fs`) and `other` (in
    /// `otherFS`), compared 4 MiB at a time with memcmp.
    func contentDifferences(in fs: any FileSystem, from other: Ext4TreeSnapshot, in otherFS: any FileSystem) throws -> [String] {
        var out: [String] = []
        for (path, inode) in fileInodes.sorted(by: { $0.key < $1.key }) {
            guard let otherInode = other.fileInodes[path], let size = entries[path]?.size else { continue }
            var offset: UInt64 = 0
            while offset < size {
                let count = Int(min(size - offset, 4 << 20))
                let a = try fs.read(inode: inode, offset: offset, count: count)
                let b = try otherFS.read(inode: otherInode, offset: offset, count: count)
                let same = a.count == b.count && a.withUnsafeBytes { pa in
                    b.withUnsafeBytes { pb in
                        guard let x = pa.baseAddress, let y = pb.baseAddress else { return pa.count == pb.count }
                        return memcmp(x, y, a.count) == 0
                    }
                }
                if !same {
                    out.append("\(path): contents differ in the 4 MiB at \(offset)")
                    break
                }
                offset += UInt64(count)
            }
        }
        return out
    }

    /// Human-readable differences, empty when the trees agree.
    func differences(from expected: Ext4TreeSnapshot, limit: Int = 20) -> [String] {
        var out: [String] = []
        for path in Set(expected.entries.keys).union(entries.keys).sorted() {
            let want = expected.entries[path], got = entries[path]
            if want != got {
                out.append("\(path): expected \(want.map(\.description) ?? "nothing"), read \(got.map(\.description) ?? "nothing")")
            }
            if out.count >= limit { return out }
        }
        if linkGroups != expected.linkGroups {
            out.append("hard-link groups differ: only expected \(expected.linkGroups.subtracting(linkGroups).prefix(5)), only read \(linkGroups.subtracting(expected.linkGroups).prefix(5))")
        }
        return out
    }
}

/// Copies every entry of a filesystem into a writer, streaming file contents, as the OCI
/// layer code will from tar.
enum Ext4WriterCopy {
    struct Totals {
        var entries = 0
        var directories = 0
        var fileBytes: UInt64 = 0
    }

    static func metadata(_ fs: any FileSystem, _ stat: FileStat, inode: UInt64) throws -> Ext4EntryMetadata {
        Ext4EntryMetadata(permissions: stat.permissions, uid: stat.uid, gid: stat.gid,
                          modificationTime: stat.modificationTime, accessTime: stat.accessTime,
                          changeTime: stat.changeTime, xattrs: try fs.xattrs(inode: inode))
    }

    /// Counts what `copy` would add (for `Ext4Writer.plan`).
    static func count(_ fs: any FileSystem) throws -> Totals {
        var totals = Totals()
        var seen: Set<UInt64> = []
        var pending = [fs.rootInode]
        while let directory = pending.popLast() {
            totals.entries += 1
            totals.directories += 1
            for child in try fs.list(directory: directory) {
                if child.type == .directory {
                    pending.append(child.inode)
                } else {
                    totals.entries += 1
                    let stat = try fs.stat(inode: child.inode)
                    if stat.type == .regular, seen.insert(child.inode).inserted { totals.fileBytes += stat.size }
                }
            }
        }
        return totals
    }

    /// Reads every regular file's contents once (the source's share of a copy).
    static func readAll(_ fs: any FileSystem) throws -> UInt64 {
        var total: UInt64 = 0
        var seen: Set<UInt64> = []
        var pending = [fs.rootInode]
        while let directory = pending.popLast() {
            for child in try fs.list(directory: directory) {
                if child.type == .directory {
                    pending.append(child.inode)
                    continue
                }
                let stat = try fs.stat(inode: child.inode)
                guard stat.type == .regular, seen.insert(child.inode).inserted else { continue }
                var offset: UInt64 = 0
                while offset < stat.size {
                    let chunk = try fs.read(inode: child.inode, offset: offset, count: Int(min(stat.size - offset, 1 << 20)))
                    guard !chunk.isEmpty else { break }
                    offset += UInt64(chunk.count)
                }
                total += stat.size
            }
        }
        return total
    }

    @discardableResult
    static func copy(_ fs: any FileSystem, into writer: Ext4Writer) throws -> Totals {
        var totals = Totals()
        var firstPath: [UInt64: String] = [:]
        let rootStat = try fs.stat(inode: fs.rootInode)
        try writer.addDirectory("/", metadata: try metadata(fs, rootStat, inode: fs.rootInode))
        var pending: [(path: String, inode: UInt64)] = [("", fs.rootInode)]
        while let (path, directory) = pending.popLast() {
            for child in try fs.list(directory: directory) {
                let childPath = path + "/" + child.name
                let stat = try fs.stat(inode: child.inode)
                totals.entries += 1
                if stat.type != .directory, let existing = firstPath[child.inode] {
                    try writer.addHardLink(childPath, target: existing)
                    continue
                }
                let meta = try metadata(fs, stat, inode: child.inode)
                switch stat.type {
                case .directory:
                    totals.directories += 1
                    try writer.addDirectory(childPath, metadata: meta)
                    pending.append((childPath, child.inode))
                case .regular:
                    totals.fileBytes += stat.size
                    try writer.addFile(childPath, metadata: meta, size: stat.size) { sink in
                        var offset: UInt64 = 0
                        while offset < stat.size {
                            let chunk = try fs.read(inode: child.inode, offset: offset, count: Int(min(stat.size - offset, 1 << 20)))
                            guard !chunk.isEmpty else { break }
                            try sink.write(chunk)
                            offset += UInt64(chunk.count)
                        }
                    }
                case .symlink:
                    try writer.addSymlink(childPath, target: try fs.readlink(inode: child.inode), metadata: meta)
                case .characterDevice:
                    try writer.addSpecialFile(childPath, .characterDevice(major: stat.deviceMajor, minor: stat.deviceMinor), metadata: meta)
                case .blockDevice:
                    try writer.addSpecialFile(childPath, .blockDevice(major: stat.deviceMajor, minor: stat.deviceMinor), metadata: meta)
                case .fifo:
                    try writer.addSpecialFile(childPath, .fifo, metadata: meta)
                case .socket:
                    try writer.addSpecialFile(childPath, .socket, metadata: meta)
                case .unknown:
                    throw WispError.unsupported(childPath, "entry of unknown type")
                }
                if stat.type != .directory { firstPath[child.inode] = childPath }
            }
        }
        return totals
    }
}

/// The real tools' verdicts on an image.
enum Ext4Judge {
    /// With WISP_EXT4W_KEEP=DIR set, a copy of `image` is left there to look at by hand
    /// (mount it, debugfs it).
    static func keep(_ image: String, as name: String) {
        guard let dir = ProcessInfo.processInfo.environment["WISP_EXT4W_KEEP"], !dir.isEmpty else { return }
        try? FileManager.default.removeItem(atPath: dir + "/" + name)
        try? FileManager.default.copyItem(atPath: image, toPath: dir + "/" + name)
    }

    /// `e2fsck -fn`: exit 0 and nothing to fix, or a failure that shows what it found.
    static func fsck(_ image: String) throws {
        let result = try ToolRunner.run("e2fsck", ["-fn", image])
        #expect(result.status == 0, "e2fsck -fn \(image) exited \(result.status):\n\(result.stdoutText)\(result.stderrText)")
    }

    static func debugfs(_ image: String, _ command: String) throws -> String {
        try ToolRunner.check("debugfs", ["-R", command, image]).stdoutText
    }

    static func dumpe2fsHeader(_ image: String) throws -> [String: String] {
        let text = try ToolRunner.check("dumpe2fs", ["-h", image]).stdoutText
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return fields
    }
}

/// Peak resident set size (VmHWM) of this process since the last `resetPeakResident()`.
func peakResidentBytes() -> UInt64 {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kib = UInt64(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kib * 1024
}

/// Starts a new peak-RSS measurement (Linux: writing 5 to clear_refs resets VmHWM).
func resetPeakResident() {
    try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
}
