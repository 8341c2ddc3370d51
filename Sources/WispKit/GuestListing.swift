import FileSystems
import Foundation
import WispCore

/// One line of `wisp fs ls`: a directory entry with its stat and, for symlinks, the target.
public struct GuestListingEntry: Sendable, Codable, Equatable {
    public var name: String
    public var inode: UInt64
    public var type: FileType
    /// Full POSIX mode (type bits and permissions).
    public var mode: UInt32
    public var modeString: String
    public var links: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: UInt64
    /// Seconds since the epoch.
    public var mtime: Int64
    public var target: String?
}

public enum GuestListing {
    /// The entries of `path` (a directory's children sorted by name, or the file itself).
    /// `long` stats every entry; otherwise only names and types are filled in.
    /// Like `ls`, a symlink named on the command line is shown itself in long form and
    /// followed otherwise (a trailing "/" always follows it).
    public static func list(_ fs: any FileSystem, path: String, long: Bool) throws -> [GuestListingEntry] {
        let follow = !long || path.hasSuffix("/")
        let resolved = try fs.resolve(path, followFinalSymlink: follow)
        let info = try fs.stat(inode: resolved.inode)
        if info.type != .directory {
            let name = resolved.path.split(separator: "/").last.map(String.init) ?? resolved.path
            return [try entry(fs, name: name, inode: resolved.inode, knownType: info.type, long: true)]
        }
        let children = try fs.list(directory: resolved.inode).sorted { $0.name < $1.name }
        guard long, children.count >= 64 else {
            return try children.map { try entry(fs, name: $0.name, inode: $0.inode, knownType: $0.type, long: long) }
        }
        // Big directories (/usr/bin): stat on every core, in contiguous slices.
        let workers = ProcessInfo.processInfo.activeProcessorCount
        let sliceSize = (children.count + workers - 1) / workers
        let results = LockedValue([Int: Result<[GuestListingEntry], any Error>]())
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let range = (worker * sliceSize)..<min(children.count, (worker + 1) * sliceSize)
            let result = Result { try range.map { i in
                try entry(fs, name: children[i].name, inode: children[i].inode, knownType: children[i].type, long: true)
            } }
            results.withLock { $0[worker] = result }
        }
        return try (0..<workers).flatMap { worker in try results.withLock { $0[worker] }?.get() ?? [] }
    }

    static func entry(_ fs: any FileSystem, name: String, inode: UInt64, knownType: FileType?, long: Bool) throws -> GuestListingEntry {
        if !long, let knownType {
            return GuestListingEntry(name: name, inode: inode, type: knownType, mode: 0, modeString: "", links: 0,
                                     uid: 0, gid: 0, size: 0, mtime: 0, target: nil)
        }
        let info = try fs.stat(inode: inode)
        return GuestListingEntry(name: name, inode: inode, type: info.type, mode: info.mode, modeString: modeString(info),
                                 links: info.linkCount, uid: info.uid, gid: info.gid, size: info.size,
                                 mtime: info.modificationTime.seconds,
                                 target: info.type == .symlink ? try fs.readlink(inode: inode) : nil)
    }

    /// "drwxr-xr-x", "-rwsr-xr-x", "lrwxrwxrwx" as ls prints them.
    public static func modeString(_ info: FileStat) -> String {
        let typeChar: Character
        switch info.type {
        case .regular: typeChar = "-"
        case .directory: typeChar = "d"
        case .symlink: typeChar = "l"
        case .characterDevice: typeChar = "c"
        case .blockDevice: typeChar = "b"
        case .fifo: typeChar = "p"
        case .socket: typeChar = "s"
        case .unknown: typeChar = "?"
        }
        let p = info.permissions
        var s = String(typeChar)
        for (shift, special, lower, upper) in [(6, UInt32(0o4000), "s", "S"), (3, UInt32(0o2000), "s", "S"), (0, UInt32(0o1000), "t", "T")] {
            let bits = (p >> UInt32(shift)) & 7
            s += bits & 4 != 0 ? "r" : "-"
            s += bits & 2 != 0 ? "w" : "-"
            if p & special != 0 {
                s += bits & 1 != 0 ? lower : upper
            } else {
                s += bits & 1 != 0 ? "x" : "-"
            }
        }
        return s
    }

    /// `ls -l`-style lines with aligned columns; times in UTC as "YYYY-MM-DD HH:MM".
    public static func longLines(_ entries: [GuestListingEntry]) -> [String] {
        let linkWidth = entries.map { String($0.links).count }.max() ?? 1
        let uidWidth = entries.map { String($0.uid).count }.max() ?? 1
        let gidWidth = entries.map { String($0.gid).count }.max() ?? 1
        let sizeWidth = entries.map { String($0.size).count }.max() ?? 1
        func pad(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        return entries.map { e in
            var line = "\(e.modeString) \(pad(String(e.links), linkWidth)) \(pad(String(e.uid), uidWidth)) \(pad(String(e.gid), gidWidth)) \(pad(String(e.size), sizeWidth)) \(formatTime(e.mtime)) \(e.name)"
            if let target = e.target { line += " -> \(target)" }
            return line
        }
    }

    static func formatTime(_ seconds: Int64) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min))"
    }
}
