import Foundation
import WispCore
import WispTestSupport
@testable import FileSystems

/// ISO images made at test time by xorriso from a source tree with the variety real ISOs
/// have (deep directories, long and Unicode names, symbolic links of every shape, modes,
/// owners, a FIFO, a directory spanning many sectors), and the judge's view of each:
/// what `xorriso -osirrox on -extract` writes back to disk.
final class ISOFixture: @unchecked Sendable {
    let directory: TemporaryDirectory
    var source: String { directory.file("src") }

    static let longName = String(repeating: "long-name-", count: 24) + "end.txt"
    static let longTarget = (1...20).map { String(format: "component-%05d", $0) }.joined(separator: "/")
    static let deepPath = (1...12).map { String(format: "d%02d", $0) }.joined(separator: "/")

    init() throws {
        directory = try TemporaryDirectory("iso-reader")
        try Self.makeSourceTree(at: source)
    }

    static func makeSourceTree(at root: String) throws {
        let fm = FileManager.default
        var random = SplitMix64(seed: 21)
        func write(_ path: String, _ bytes: [UInt8], mode: Int = 0o644, mtime: TimeInterval? = nil) throws {
            let full = "\(root)/\(path)"
            try fm.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: full))
            try fm.setAttributes([.posixPermissions: mode], ofItemAtPath: full)
            if let mtime { try fm.setAttributes([.modificationDate: Date(timeIntervalSince1970: mtime)], ofItemAtPath: full) }
        }
        func dir(_ path: String, mode: Int = 0o755) throws {
            let full = "\(root)/\(path)"
            try fm.createDirectory(atPath: full, withIntermediateDirectories: true)
            try fm.setAttributes([.posixPermissions: mode], ofItemAtPath: full)
        }
        try dir("")
        try write("hello.txt", Array("hello, iso\n".utf8), mtime: 981_173_106)
        try write("empty", [])
        try write("sector.bin", random.bytes(2048))
        try write("random.bin", random.bytes(200_000), mode: 0o600)
        try write("script.sh", Array("#!/bin/sh\necho hi\n".utf8), mode: 0o755, mtime: 1_500_000_000)
        try write("setgid-tool", Array("tool\n".utf8), mode: 0o2755)
        try write(longName, Array("long\n".utf8))
        try write(String(repeating: "dir-with-a-long-name-", count: 6) + "x/inside.txt", Array("inside\n".utf8))
        try write("héllo wörld ✓ 日本.txt", Array("unicode\n".utf8))
        try write("name;1", Array("not a version\n".utf8))
        try write("\(deepPath)/leaf.txt", Array("deep leaf\n".utf8))
        try write("d01/d02/d03/d04/d05/d06/d07/d08/d09/sibling.txt", Array("sibling\n".utf8))
        for i in 0..<300 { try write(String(format: "many/file-%03d-with-some-padding-in-its-name", i), Array("\(i)\n".utf8)) }
        try dir("tmp", mode: 0o1777)
        try dir("private", mode: 0o700)
        try write("private/secret", Array("secret\n".utf8), mode: 0o400)
        for (name, target) in [("rel-link", "hello.txt"), ("abs-link", "/etc/os-release"), ("dangling", "nowhere/at/all"),
                               ("dir-link", "d01/d02"), ("dotdot-link", "../../x/./y"), ("long-link", longTarget),
                               ("root-link", "/")] {
            try fm.createSymbolicLink(atPath: "\(root)/\(name)", withDestinationPath: target)
        }
        guard mkfifo("\(root)/pipe", 0o640) == 0 else { throw WispError.posix("mkfifo", "\(root)/pipe", errno: errno) }
        // Owners other than the runner's when the tests may set them.
        if getuid() == 0 {
            guard chown("\(root)/hello.txt", 1234, 5678) == 0, chown("\(root)/private", 1000, 1000) == 0 else {
                throw WispError.posix("chown", root, errno: errno)
            }
        }
    }

    /// Runs `xorriso -as mkisofs ARGS -o NAME SOURCE`.
    func mkisofs(_ name: String, _ arguments: [String], from tree: String? = nil) throws -> String {
        let path = directory.file(name)
        try ToolRunner.check("xorriso", ["-as", "mkisofs"] + arguments + ["-o", path, tree ?? source])
        return path
    }

    /// What the judge makes of `iso`: every path under its extraction with type, mode,
    /// owner, content or link target, and modification times in seconds.
    func extracted(_ iso: String) throws -> (tree: [String: XFSExpected], mtimes: [String: Int64]) {
        let out = directory.file("extract-\(UUID().uuidString)")
        try ToolRunner.check("xorriso", ["-osirrox", "on", "-indev", iso, "-extract", "/", out])
        defer { try? FileManager.default.removeItem(atPath: out) }
        var tree: [String: XFSExpected] = [:], mtimes: [String: Int64] = [:]
        var pending = [""]
        while let relative = pending.popLast() {
            for name in try FileManager.default.contentsOfDirectory(atPath: out + relative) {
                let path = "\(relative)/\(name)", full = out + path
                var info = Glibc.stat()
                guard lstat(full, &info) == 0 else { throw WispError.posix("lstat", full, errno: errno) }
                let permissions = UInt32(info.st_mode) & 0o7777
                mtimes[path] = Int64(info.st_mtim.tv_sec)
                switch UInt32(info.st_mode) & 0o170000 {
                case 0o040000:
                    tree[path] = .directory(permissions: permissions)
                    pending.append(path)
                case 0o100000:
                    tree[path] = .file(content: Array(try Data(contentsOf: URL(fileURLWithPath: full))), permissions: permissions,
                                       uid: info.st_uid, gid: info.st_gid)
                case 0o120000:
                    tree[path] = .symlink(target: try FileManager.default.destinationOfSymbolicLink(atPath: full))
                    mtimes[path] = nil  // xorriso does not set a link's own time
                case 0o010000:
                    tree[path] = .fifo(permissions: permissions)
                default:
                    tree[path] = .directory(permissions: 0xFFFF)
                }
            }
        }
        return (tree, mtimes)
    }

    /// Everything `fs` shows, in the judge's terms, with modification times.
    static func walk(_ fs: any FileSystem) throws -> (tree: [String: XFSExpected], mtimes: [String: Int64]) {
        let tree = try ReaderTreeJudge.walk(fs)
        var mtimes: [String: Int64] = [:]
        for (path, node) in tree {
            if case .symlink = node { continue }
            mtimes[path] = try fs.stat(path: path, followFinalSymlink: false).modificationTime.seconds
        }
        return (tree, mtimes)
    }
}
