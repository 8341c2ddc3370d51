import Testing
import WispCore
@testable import FileSystems

/// How the XFS and btrfs suites judge a reader: walk everything it shows and compare it with
/// the tree the fixture script wrote (bytes, modes, owners, link targets, devices, xattrs).
enum ReaderTreeJudge {
    /// Walks the whole filesystem into path → what was found.
    static func walk(_ fs: any FileSystem) throws -> [String: XFSExpected] {
        var found: [String: XFSExpected] = [:]
        var pending: [(String, UInt64)] = [("", fs.rootInode)]
        while let (path, inode) = pending.popLast() {
            for entry in try fs.list(directory: inode) {
                let child = "\(path)/\(entry.name)"
                let info = try fs.stat(inode: entry.inode)
                if let type = entry.type { #expect(type == info.type, "\(child): ftype says \(type), inode says \(info.type)") }
                switch info.type {
                case .directory:
                    found[child] = .directory(permissions: info.permissions)
                    pending.append((child, entry.inode))
                case .regular:
                    // Ask for more than the size to see the reader stop at end of file, but
                    // never trust a (possibly corrupted) size for the allocation.
                    let want = info.size < 16 << 20 ? Int(info.size) + 10 : 1 << 20
                    let content = try fs.read(inode: entry.inode, offset: 0, count: want)
                    #expect(UInt64(content.count) == min(info.size, UInt64(want)))
                    found[child] = .file(content: content, permissions: info.permissions, uid: info.uid, gid: info.gid)
                case .symlink:
                    found[child] = .symlink(target: try fs.readlink(inode: entry.inode))
                case .characterDevice, .blockDevice:
                    found[child] = .device(info.type, major: info.deviceMajor, minor: info.deviceMinor, permissions: info.permissions)
                case .fifo:
                    found[child] = .fifo(permissions: info.permissions)
                default:
                    found[child] = .directory(permissions: 0xFFFF)
                }
            }
        }
        return found
    }

    /// Records an issue for every path missing, extra or different, and for wrong xattrs.
    static func expectTree(_ found: [String: XFSExpected], in fs: any FileSystem, expected: [String: XFSExpected],
                           xattrs: [String: [String: [UInt8]]]) throws {
        #expect(Set(found.keys) == Set(expected.keys),
                "missing: \(Set(expected.keys).subtracting(found.keys).sorted().prefix(5)) extra: \(Set(found.keys).subtracting(expected.keys).sorted().prefix(5))")
        var mismatches: [String] = []
        for (path, want) in expected where found[path] != want { mismatches.append(path) }
        #expect(mismatches.isEmpty, "differ from the source tree: \(mismatches.sorted().prefix(10))")
        for (path, want) in xattrs {
            let got = try fs.xattrs(inode: fs.resolve(path).inode)
            #expect(got == want, "\(path): xattrs \(got.keys.sorted()) vs expected \(want.keys.sorted())")
        }
        #expect(try fs.xattrs(inode: fs.resolve("/size-2-100").inode).isEmpty)
    }

    /// What a reader made of one corrupted image: the source data, different data (a bug),
    /// a clear WispError, or some other error (also a bug).
    enum CorruptionOutcome: Sendable { case same, different, wispError, otherError(String) }

    static func outcome(expected: [String: XFSExpected], xattrs: [String: [String: [UInt8]]],
                        open: () throws -> any FileSystem) -> CorruptionOutcome {
        do {
            return try reads(try open(), as: expected, xattrs: xattrs) ? .same : .different
        } catch is WispError {
            return .wispError
        } catch {
            return .otherError("\(error)")
        }
    }

    /// Whether `fs` reads exactly as `expected` (for corruption runs: same, or an error).
    static func reads(_ fs: any FileSystem, as expected: [String: XFSExpected], xattrs: [String: [String: [UInt8]]]) throws -> Bool {
        guard try walk(fs) == expected else { return false }
        for (path, want) in xattrs {
            if try fs.xattrs(inode: fs.resolve(path).inode) != want { return false }
        }
        return true
    }
}
