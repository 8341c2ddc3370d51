import Foundation
import WispCore
import WispTestSupport
@testable import FileSystems
#if canImport(Glibc)
import Glibc
#endif

/// Builds a source tree with the variety of the ext4 and XFS tests (sizes from 0 to MiBs,
/// sparse files, deep and wide directories, short and long symlinks, hard links, xattrs,
/// device nodes, a FIFO) and turns it into a btrfs image with `mkfs.btrfs --rootdir`, or
/// with mkfs.ext4 -d + `btrfs-convert` (which also makes a real subvolume, ext2_saved).
/// `btrfs check --readonly` judges every image before the reader sees it.
final class BtrfsFixture {
    let directory: TemporaryDirectory
    let image: String
    let sourceRoot: String
    /// What the reader must find at each path (same shape as the XFS tests' walk).
    var expected: [String: XFSExpected] = [:]
    var expectedXattrs: [String: [String: [UInt8]]] = [:]
    /// Paths that are hard links of one another.
    var hardLinks: [[String]] = []
    let mkfsStarted = Date()

    static let standardDirectories = [("small", 5), ("wide", 5000)]
    static let compactDirectories = [("small", 5), ("wide", 300)]

    enum Maker { case mkfs, convert }

    init(options: [String] = [], maker: Maker = .mkfs, compact: Bool = false,
         directories: [(String, Int)] = standardDirectories, imageSize: String = "256M") throws {
        directory = try TemporaryDirectory("wisp-btrfs")
        image = directory.file("btrfs.img")
        sourceRoot = directory.file("src")
        var random = SplitMix64(state: 0x4254_5246)
        let fm = FileManager.default
        try fm.createDirectory(atPath: sourceRoot, withIntermediateDirectories: true)
        chmod(sourceRoot, 0o755)

        func file(_ path: String, _ content: [UInt8], mode: UInt32 = 0o644, uid: UInt32 = 0, gid: UInt32 = 0) throws {
            let full = sourceRoot + path
            guard fm.createFile(atPath: full, contents: Data(content)) else { throw WispError(.failed, "cannot create \(full)") }
            chown(full, uid, gid)
            chmod(full, mode_t(mode))
            expected[path] = .file(content: content, permissions: mode, uid: uid, gid: gid)
        }
        func dir(_ path: String, mode: UInt32 = 0o755) throws {
            try fm.createDirectory(atPath: sourceRoot + path, withIntermediateDirectories: false)
            chmod(sourceRoot + path, mode_t(mode))
            expected[path] = .directory(permissions: mode)
        }
        func symlinkAt(_ path: String, _ target: String) throws {
            guard symlink(target, sourceRoot + path) == 0 else { throw WispError(.failed, "symlink \(path): errno \(errno)") }
            expected[path] = .symlink(target: target)
        }

        let sizes = [0, 1, 100, 2047, 2048, 2049, 4095, 4096, 4097, 65539] + (compact ? [] : [1 << 20, 3 << 20 | 5])
        for (i, size) in sizes.enumerated() { try file("/size-\(i)-\(size)", random.bytes(size)) }
        // Compressible content: long runs and repeated text.
        try file("/text", Array(String(repeating: "the quick brown fox jumps over the lazy dog\n", count: compact ? 300 : 3000).utf8))
        try file("/setuid", random.bytes(10), mode: 0o4755, uid: 1000, gid: 100)
        try file("/setgid", random.bytes(10), mode: 0o2750, uid: 65534, gid: 4242)
        try file("/caf\u{e9}-\u{1F600}", Array("unicode".utf8))
        try file("/" + String(repeating: "L", count: 255), Array("long name".utf8))

        // A sparse file: data, a hole, data, and a hole up to the end.
        let sparsePath = sourceRoot + "/sparse"
        var sparse = [UInt8](repeating: 0, count: compact ? 256 << 10 : 4 << 20)
        let first = random.bytes(8192), second = random.bytes(5000)
        sparse.replaceSubrange(0..<8192, with: first)
        let secondAt = sparse.count / 2 + 123
        sparse.replaceSubrange(secondAt..<(secondAt + 5000), with: second)
        guard fm.createFile(atPath: sparsePath, contents: nil), let handle = FileHandle(forWritingAtPath: sparsePath) else {
            throw WispError(.failed, "cannot create \(sparsePath)")
        }
        try handle.write(contentsOf: Data(first))
        try handle.seek(toOffset: UInt64(secondAt))
        try handle.write(contentsOf: Data(second))
        try handle.truncate(atOffset: UInt64(sparse.count))
        try handle.close()
        chmod(sparsePath, 0o644)
        expected["/sparse"] = .file(content: sparse, permissions: 0o644, uid: 0, gid: 0)

        // Hard links: one inode, three names in two directories.
        try dir("/links")
        try file("/links/original", random.bytes(3000))
        for name in ["/links/second", "/size-link"] {
            guard link(sourceRoot + "/links/original", sourceRoot + name) == 0 else { throw WispError(.failed, "link: errno \(errno)") }
            expected[name] = expected["/links/original"]
        }
        hardLinks = [["/links/original", "/links/second", "/size-link"]]

        // Symlinks: short, long (still inline), absolute.
        try symlinkAt("/short-link", "size-2-100")
        let longTarget = String((0..<200).map { _ in "segment-\(random.next() % 100)" }.joined(separator: "/").prefix(3000))
        try symlinkAt("/long-link", longTarget)
        try symlinkAt("/abs-link", "/deep/d1/d2")

        // Extended attributes in several namespaces, one value large.
        try file("/xattrs", [1, 2, 3])
        var xattrs: [String: [UInt8]] = ["user.color": Array("blue".utf8), "user.empty": [],
                                         "trusted.secret": random.bytes(40), "security.label": Array("system_u:object_r:etc_t:s0".utf8)]
        xattrs["user.big"] = random.bytes(2000)
        for (name, value) in xattrs {
            let hex = value.isEmpty ? "" : "0x" + value.map { String($0 >> 4, radix: 16) + String($0 & 15, radix: 16) }.joined()
            try ToolRunner.check("setfattr", ["-n", name, "-v", hex, sourceRoot + "/xattrs"])
        }
        expectedXattrs["/xattrs"] = xattrs

        // Device nodes and a FIFO (the test runs as root, as in CI).
        for (name, type, major, minor, mode) in [("null", FileType.characterDevice, UInt32(1), UInt32(3), UInt32(0o666)),
                                                  ("disk", .blockDevice, 8, 70000, 0o660)] {
            try ToolRunner.check("mknod", ["-m", String(mode, radix: 8), sourceRoot + "/" + name,
                                           type == .characterDevice ? "c" : "b", "\(major)", "\(minor)"])
            chmod(sourceRoot + "/" + name, mode_t(mode))
            // mkfs.btrfs 6.2 --rootdir stores rdev 0 for every device node (dump-tree shows
            // "rdev 0"); btrfs-convert stores the kernel's dev_t, as the kernel itself does.
            let keeps = maker == .convert
            expected["/" + name] = .device(type, major: keeps ? major : 0, minor: keeps ? minor : 0, permissions: mode)
        }
        guard mkfifo(sourceRoot + "/pipe", 0o600) == 0 else { throw WispError(.failed, "mkfifo: errno \(errno)") }
        chmod(sourceRoot + "/pipe", 0o600)
        expected["/pipe"] = .fifo(permissions: 0o600)

        // A deep chain and wide directories.
        var path = ""
        for level in 0...24 {
            path += level == 0 ? "/deep" : "/d\(level)"
            try dir(path)
        }
        try file(path + "/bottom", Array("bottom of the tree\n".utf8))
        for (name, count) in directories {
            try dir("/" + name, mode: 0o750)
            for i in 0..<count {
                let entry = "entry-\(i)-" + String(repeating: "x", count: Int(random.next() % 21))
                try file("/\(name)/\(entry)", random.bytes(Int(random.next() % 40)))
            }
        }

        switch maker {
        case .mkfs:
            try ToolRunner.check("truncate", ["-s", imageSize, image])
            try ToolRunner.check("mkfs.btrfs", ["-f", "-q", "-L", "wisp-btrfs"] + options + ["--rootdir", sourceRoot, image])
        case .convert:
            try ToolRunner.check("truncate", ["-s", imageSize, image])
            try ToolRunner.check("mkfs.ext4", ["-q", "-F", "-b", "4096", "-L", "wisp-btrfs", "-d", sourceRoot, image])
            try ToolRunner.check("btrfs-convert", options + [image])
        }
        try ToolRunner.check("btrfs", ["check", "--readonly", image])
    }

    /// `btrfs inspect-internal dump-tree` output, for finding metadata block addresses.
    func dumpTree(_ arguments: [String] = []) throws -> String {
        try ToolRunner.check("btrfs", ["inspect-internal", "dump-tree"] + arguments + [image]).stdoutText
    }
}
