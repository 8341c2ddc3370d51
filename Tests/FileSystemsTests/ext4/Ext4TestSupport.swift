import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

#if canImport(Glibc)
import Glibc
#endif


/// Builds the source trees the ext4 fixtures are made from with the real `mkfs.ext4 -d`.
enum Ext4SourceTree {
    struct Options {
        init(wide: Bool = true, deep: Bool = true, specials: Bool = true, xattrs: Bool = true,
             bigFiles: Bool = true, hugeSparse: Bool = false, sparse: Bool = true) {
            self.sparse = sparse
            self.wide = wide
            self.deep = deep
            self.specials = specials
            self.xattrs = xattrs
            self.bigFiles = bigFiles
            self.hugeSparse = hugeSparse
        }

        var wide = true
        var deep = true
        var specials = true
        var xattrs = true
        var bigFiles = true
        var hugeSparse = false
        var sparse = true
    }

    static func write(_ path: String, _ bytes: [UInt8]) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw WispError(.io, "cannot create \(path)")
        }
    }

    static func mkdir(_ path: String, mode: Int = 0o755) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: mode])
    }

    /// Writes `bytes` at `offset` of an existing file (sparse files are made this way).
    static func pwrite(_ path: String, _ bytes: [UInt8], at offset: UInt64) throws {
        let fd = open(path, O_WRONLY)
        guard fd >= 0 else { throw WispError.posix("open", path, errno: errno) }
        defer { close(fd) }
        let n = bytes.withUnsafeBytes { Glibc.pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard n == bytes.count else { throw WispError.posix("pwrite", path, errno: errno) }
    }

    static func truncate(_ path: String, to size: UInt64) throws {
        if !FileManager.default.fileExists(atPath: path) { try write(path, []) }
        guard Glibc.truncate(path, off_t(size)) == 0 else { throw WispError.posix("truncate", path, errno: errno) }
    }

    static func setTimes(_ path: String, seconds: Int, nanoseconds: Int) throws {
        var times = [timespec(tv_sec: seconds, tv_nsec: nanoseconds), timespec(tv_sec: seconds, tv_nsec: nanoseconds)]
        guard utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw WispError.posix("utimensat", path, errno: errno)
        }
    }

    static func build(at root: String, options: Options = Options(), seed: UInt64 = 1) throws {
        var rng = SplitMix64(seed: seed)
        try mkdir(root)
        try write("\(root)/empty", [])
        try write("\(root)/one", [0x41])
        for size in [59, 60, 61, 150, 1000, 4095, 4096, 4097, 10_000, 70_000] {
            try write("\(root)/size-\(size)", rng.bytes(size))
        }
        if options.bigFiles {
            // 300 KiB reaches double-indirect blocks with 1 KiB blocks; 5 MiB with 4 KiB ones.
            try write("\(root)/indirect-300k", rng.bytes(300 * 1024 + 5))
            try write("\(root)/indirect-5m", rng.bytes(5 * 1024 * 1024 + 7))
        }
        if options.sparse {
            // A few islands of data in 80 MiB (triple-indirect with 1 KiB blocks).
            try truncate("\(root)/sparse", to: 80 << 20)
            try pwrite("\(root)/sparse", Array("start".utf8), at: 0)
            try pwrite("\(root)/sparse", rng.bytes(9000), at: 4096 * 1000 + 17)
            try pwrite("\(root)/sparse", rng.bytes(100), at: 70 << 20)
            try pwrite("\(root)/sparse", Array("end".utf8), at: (80 << 20) - 3)
        }
        if options.hugeSparse {
            try truncate("\(root)/huge", to: 5 << 30)
            try pwrite("\(root)/huge", Array("head".utf8), at: 0)
            try pwrite("\(root)/huge", rng.bytes(5000), at: (9 << 29) - 2000)
            try pwrite("\(root)/huge", Array("tail".utf8), at: (5 << 30) - 4)
        }

        try mkdir("\(root)/dir/sub")
        try write("\(root)/dir/sub/file", Array("nested\n".utf8))
        try mkdir("\(root)/sticky", mode: 0o1777)
        try write("\(root)/secret", Array("s".utf8))
        chmod("\(root)/secret", 0o600)
        try write("\(root)/setuid", Array("#!/bin/sh\n".utf8))
        chmod("\(root)/setuid", 0o4755)
        try write("\(root)/owned", Array("owned".utf8))
        chown("\(root)/owned", 1234, 5678)
        try write("\(root)/high-owner", Array("high".utf8))
        chown("\(root)/high-owner", 100_000, 200_000)
        try write("\(root)/caf\u{E9}-\u{FC}.txt", Array("unicode".utf8))
        try write("\(root)/" + String(repeating: "n", count: 255), Array("long name".utf8))

        try FileManager.default.createSymbolicLink(atPath: "\(root)/link-short", withDestinationPath: "one")
        try FileManager.default.createSymbolicLink(atPath: "\(root)/link-long",
            withDestinationPath: String(repeating: "long-component/", count: 6) + "target")
        try FileManager.default.createSymbolicLink(atPath: "\(root)/link-300",
            withDestinationPath: String(repeating: "x", count: 300))
        try FileManager.default.createSymbolicLink(atPath: "\(root)/link-abs", withDestinationPath: "/dir/sub/file")
        try FileManager.default.createSymbolicLink(atPath: "\(root)/link-dir", withDestinationPath: "dir")
        try FileManager.default.createSymbolicLink(atPath: "\(root)/dir/link-up", withDestinationPath: "../one")

        try write("\(root)/hard-a", Array("shared by three names".utf8))
        try FileManager.default.linkItem(atPath: "\(root)/hard-a", toPath: "\(root)/dir/hard-b")
        try FileManager.default.linkItem(atPath: "\(root)/hard-a", toPath: "\(root)/hard-c")

        try setTimes("\(root)/size-59", seconds: 1_600_000_000, nanoseconds: 123_456_789)
        try setTimes("\(root)/link-short", seconds: 1_000_000_000, nanoseconds: 999_999_999)

        if options.specials {
            guard mkfifo("\(root)/fifo", 0o644) == 0 else { throw WispError.posix("mkfifo", root, errno: errno) }
            guard mknod("\(root)/null", S_IFCHR | 0o666, makedev(1, 3)) == 0,
                  mknod("\(root)/loop0", S_IFBLK | 0o660, makedev(7, 0)) == 0,
                  mknod("\(root)/bigdev", S_IFCHR | 0o600, makedev(300, 70_000)) == 0 else {
                throw WispError.posix("mknod", root, errno: errno)
            }
        }
        if options.xattrs {
            try write("\(root)/xattr-small", Array("x".utf8))
            try setxattr("\(root)/xattr-small", "user.colour", "blue")
            try setxattr("\(root)/xattr-small", "trusted.level", "seven")
            try setxattr("\(root)/xattr-small", "security.label", "top")
            try write("\(root)/xattr-big", Array("y".utf8))
            try setxattr("\(root)/xattr-big", "user.big", String(repeating: "b", count: 600))
            for i in 0..<6 {
                try setxattr("\(root)/xattr-big", "user.many\(i)", String(repeating: "\(i)", count: 30))
            }
            try setxattr("\(root)/dir", "user.on-a-dir", "yes")
            // user::rw- user:1000:rw- group::r-- mask::rw- other::r--, stored by ext4 in its
            // compact form and read back in the xattr form.
            try write("\(root)/acl", Array("acl".utf8))
            try setxattr("\(root)/acl", "system.posix_acl_access",
                         "0x0200000001000600ffffffff02000600e803000004000400ffffffff10000600ffffffff20000400ffffffff")
        }
        if options.deep {
            var path = "\(root)/deep"
            for level in 1...50 { path += "/level\(level)" }
            try mkdir(path)
            try write("\(path)/bottom", Array("deep down".utf8))
        }
        if options.wide {
            try mkdir("\(root)/wide")
            for i in 0..<5000 {
                let name = "entry-\(i)-" + String(repeating: "w", count: i % 37)
                try write("\(root)/wide/\(name)", i % 500 == 0 ? Array("\(i)".utf8) : [])
            }
        }
    }

    static func setxattr(_ path: String, _ name: String, _ value: String) throws {
        try ToolRunner.check("setfattr", ["-h", "-n", name, "-v", value, path])
    }

    static func major(_ dev: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: ((dev >> 8) & 0xFFF) | ((dev >> 32) & ~0xFFF))
    }

    static func minor(_ dev: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: (dev & 0xFF) | ((dev >> 12) & ~0xFF))
    }

    #if canImport(Glibc)
    static func makedev(_ major: UInt32, _ minor: UInt32) -> dev_t {
        dev_t((UInt64(major & 0xFFF) << 8) | (UInt64(major & ~0xFFF) << 32) | UInt64(minor & 0xFF)
              | (UInt64(minor & ~0xFF) << 12))
    }
    #endif
}

/// Makes an image from a tree with the real mke2fs.
enum Ext4Fixture {
    static func make(image: String, from source: String?, sizeMiB: Int, tool: String = "mkfs.ext4",
                     arguments: [String]) throws {
        try Ext4SourceTree.truncate(image, to: UInt64(sizeMiB) << 20)
        var args = ["-q", "-F", "-E", "lazy_itable_init=1,root_owner=0:0", "-L", "wisp-test",
                    "-U", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"] + arguments
        if let source { args += ["-d", source] }
        args.append(image)
        try ToolRunner.check(tool, args)
    }

    /// mke2fs -d links entries one by one and never builds hash indexes; `e2fsck -fyD`
    /// rebuilds every directory, indexing the big ones, as a long-lived filesystem has them.
    static func indexDirectories(_ image: String) throws {
        let result = try ToolRunner.run("e2fsck", ["-fyD", image])
        guard result.status == 0 || result.status == 1 else {
            throw WispError(.failed, "e2fsck -fyD \(image) exited \(result.status): \(result.stdoutText)\(result.stderrText)")
        }
    }

    static func open(_ image: String) throws -> Ext4Reader {
        try Ext4Reader(device: try FileBlockDevice(path: image))
    }

    /// `debugfs -R command image` output.
    static func debugfs(_ image: String, _ command: String) throws -> String {
        try ToolRunner.check("debugfs", ["-R", command, image]).stdoutText
    }
}

/// Compares everything Wisp reads from an ext4 image with the tree it was made from.
enum Ext4TreeComparison {
    struct Report {
        var files = 0
        var bytes: UInt64 = 0
    }

    /// mkfs -d (e2fsprogs 1.47) keeps whole seconds only, so nanoseconds are checked
    /// against debugfs-written values elsewhere.
    static func compare(_ fs: any FileSystem, source: String) throws -> Report {
        var report = Report()
        var inodeBySourceInode: [UInt64: UInt64] = [:]
        let attributes = try sourceXattrs(source)
        try walk(fs, directory: fs.rootInode, source: source, relative: "", report: &report,
                 links: &inodeBySourceInode, attributes: attributes)
        return report
    }

    private static func walk(_ fs: any FileSystem, directory: UInt64, source: String, relative: String,
                             report: inout Report, links: inout [UInt64: UInt64],
                             attributes: [String: [String: [UInt8]]]) throws {
        let here = source + relative
        let names = try FileManager.default.contentsOfDirectory(atPath: here).sorted()
        let listed = try fs.list(directory: directory)
        // mke2fs adds lost+found to the root.
        let listedNames = Set(listed.map(\.name)).subtracting(relative.isEmpty ? ["lost+found"] : [])
        #expect(listedNames == Set(names), "listing of \(relative.isEmpty ? "/" : relative)")
        let listedByName = Dictionary(listed.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for name in names {
            let rel = relative + "/" + name
            let path = source + rel
            var st = Glibc.stat()
            guard lstat(path, &st) == 0 else { throw WispError.posix("lstat", path, errno: errno) }
            guard let entry = listedByName[name] else { continue }
            let info = try fs.stat(inode: entry.inode)
            report.files += 1
            let expectedType = FileType(mode: UInt32(st.st_mode))
            #expect(info.type == expectedType, "\(rel): type")
            if let listedType = entry.type { #expect(listedType == expectedType, "\(rel): directory entry type") }
            #expect(info.permissions == UInt32(st.st_mode) & 0o7777, "\(rel): permissions")
            #expect(info.uid == st.st_uid && info.gid == st.st_gid, "\(rel): owner \(info.uid):\(info.gid)")
            #expect(info.modificationTime.seconds == Int64(st.st_mtim.tv_sec), "\(rel): mtime seconds")
            if expectedType != .directory {
                #expect(info.linkCount == UInt32(st.st_nlink), "\(rel): link count")
                let sourceInode = UInt64(st.st_ino)
                if let known = links[sourceInode] {
                    #expect(known == info.inode, "\(rel): hard links share one inode")
                } else {
                    links[sourceInode] = info.inode
                }
            }
            let expectedXattrs = attributes[path] ?? [:]
            #expect(try fs.xattrs(inode: info.inode) == expectedXattrs, "\(rel): xattrs")
            switch expectedType {
            case .directory:
                try walk(fs, directory: info.inode, source: source, relative: rel, report: &report,
                         links: &links, attributes: attributes)
            case .regular:
                #expect(info.size == UInt64(st.st_size), "\(rel): size")
                report.bytes += try compareContents(fs, inode: info.inode, path: path, size: UInt64(st.st_size), rel: rel)
            case .symlink:
                let target = try FileManager.default.destinationOfSymbolicLink(atPath: path)
                #expect(try fs.readlink(inode: info.inode) == target, "\(rel): link target")
                #expect(info.size == UInt64(target.utf8.count), "\(rel): symlink size")
            case .characterDevice, .blockDevice:
                #expect(info.deviceMajor == Ext4SourceTree.major(UInt64(st.st_rdev)) && info.deviceMinor == Ext4SourceTree.minor(UInt64(st.st_rdev)),
                        "\(rel): device numbers \(info.deviceMajor):\(info.deviceMinor)")
            default:
                break
            }
        }
    }

    /// Compares a regular file's bytes. Files over 64 MiB are compared where the source has
    /// data (SEEK_DATA/SEEK_HOLE), plus samples of the holes, so a sparse 5 GiB file stays fast.
    static func compareContents(_ fs: any FileSystem, inode: UInt64, path: String, size: UInt64, rel: String) throws -> UInt64 {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var ranges: [(UInt64, UInt64)] = []
        if size <= 64 << 20 {
            ranges = [(0, size)]
        } else {
            let fd = handle.fileDescriptor
            var position: off_t = 0
            while UInt64(position) < size {
                let data = lseek(fd, position, 3 /* SEEK_DATA */)
                if data < 0 { break }
                let hole = lseek(fd, data, 4 /* SEEK_HOLE */)
                ranges.append((UInt64(data), UInt64(hole)))
                position = hole
            }
            // Samples of the holes must read as zeros.
            for probe in [size / 3, size / 2, size - (1 << 20)] {
                if !ranges.contains(where: { $0.0 < probe + 4096 && probe < $0.1 }) {
                    let bytes = try fs.read(inode: inode, offset: probe, count: 4096)
                    #expect(bytes.count == 4096 && bytes.allSatisfy { $0 == 0 }, "\(rel): hole at \(probe) reads as zeros")
                }
            }
        }
        var compared: UInt64 = 0
        for (start, end) in ranges {
            var offset = start
            while offset < end {
                let chunk = Int(min(UInt64(1 << 20), end - offset))
                try handle.seek(toOffset: offset)
                let expected = [UInt8](try handle.read(upToCount: chunk) ?? Data())
                let actual = try fs.read(inode: inode, offset: offset, count: chunk)
                guard actual == expected else {
                    Issue.record("\(rel): bytes differ in \(offset)..<\(offset + UInt64(chunk))")
                    return compared
                }
                offset += UInt64(chunk)
                compared += UInt64(chunk)
            }
        }
        #expect(try fs.read(inode: inode, offset: size, count: 10).isEmpty, "\(rel): read at end of file")
        return compared
    }

    /// Every extended attribute in the tree, by absolute path, from the real getfattr.
    static func sourceXattrs(_ root: String) throws -> [String: [String: [UInt8]]] {
        let out = try ToolRunner.run("getfattr", ["-R", "-P", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", root])
        var result: [String: [String: [UInt8]]] = [:]
        var current: String?
        for line in out.stdoutText.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# file: ") {
                current = String(line.dropFirst("# file: ".count))
                continue
            }
            guard let current else { continue }
            let parts = line.split(separator: "=", maxSplits: 1)
            let name = String(parts[0])
            var value: [UInt8] = []
            if parts.count == 2 {
                let hex = Array(parts[1].dropFirst(2).utf8)
                var i = 0
                while i + 1 < hex.count {
                    value.append(UInt8(String(decoding: hex[i...(i + 1)], as: UTF8.self), radix: 16) ?? 0)
                    i += 2
                }
            }
            result[current, default: [:]][name] = value
        }
        return result
    }
}

/// Counts the reads reaching a device, to prove big files are read a run at a time.
final class CountingBlockDevice: BlockDevice, @unchecked Sendable {
    let base: any BlockDevice
    let reads = LockedValue(0)
    var name: String { base.name }
    var size: UInt64 { base.size }
    var isReadOnly: Bool { true }

    init(_ base: any BlockDevice) { self.base = base }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        reads.withLock { $0 += 1 }
        try base.read(into: buffer, at: offset)
    }

    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        throw WispError.invalidArgument("read-only")
    }

    func flush() throws {}

    func allocationMap(offset: UInt64, length: UInt64) throws -> [AllocationExtent] {
        try base.allocationMap(offset: offset, length: length)
    }
}
