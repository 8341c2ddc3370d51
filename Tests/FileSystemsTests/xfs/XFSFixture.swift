import Foundation
import WispCore
import WispTestSupport
@testable import FileSystems


/// What the test expects at one path of the XFS image.
enum XFSExpected: Equatable {
    case file(content: [UInt8], permissions: UInt32, uid: UInt32, gid: UInt32)
    case directory(permissions: UInt32)
    case symlink(target: String)
    case device(FileType, major: UInt32, minor: UInt32, permissions: UInt32)
    case fifo(permissions: UInt32)
}

/// Builds a source tree with the variety of the ext4 tests, writes it as an mkfs.xfs
/// protofile (xfsprogs 6.1 syntax: no xattrs, no hard links, no holes) and makes the image.
/// Extra cases mkfs cannot express (xattrs, holes, unwritten extents) are then written by
/// `xfs_db -x`, the XFS debugger, so the real XFS code still lays out every structure.
final class XFSFixture {
    let directory: TemporaryDirectory
    let image: String
    var expected: [String: XFSExpected] = [:]
    /// Expected extended attributes by path.
    var expectedXattrs: [String: [String: [UInt8]]] = [:]
    let blockSize: Int
    let mkfsStarted = Date()

    /// Environment that lets mkfs.xfs make filesystems under 300 MB (the xfstests escape).
    static let smallFilesystemEnvironment = ["TEST_DIR": "/tmp", "TEST_DEV": "/dev/null", "QA_CHECK_FS": "1"]

    /// Directories sized for each on-disk form (with 4 KiB blocks): shortform, block,
    /// leaf, node; and a fragmented one whose data blocks interleave with its files' data,
    /// which pushes its fork into btree format. (name, entries, file size, extra name length)
    static let standardDirectories = [("sf", 5, 0, 20), ("block", 40, 0, 20), ("leaf", 400, 0, 20),
                                      ("node", 5000, 0, 20), ("fragmented", 4000, 1, 20)]
    /// The same forms with 1 KiB blocks and far fewer entries, for fast corruption runs.
    static let smallDirectories = [("sf", 5, 0, 10), ("block", 10, 0, 10), ("leaf", 40, 0, 10),
                                   ("node", 200, 0, 10), ("fragmented", 700, 1, 240)]

    init(options: [String], blockSize: Int = 4096, directories: [(String, Int, Int, Int)] = standardDirectories,
         compact: Bool = false, imageSize: String = "192M") throws {
        directory = try TemporaryDirectory("wisp-xfs")
        image = directory.file("xfs.img")
        self.blockSize = blockSize
        var random = SplitMix64(state: 0x5846_5342)
        let sourceRoot = directory.file("src")
        try FileManager.default.createDirectory(atPath: sourceRoot, withIntermediateDirectories: true)
        var proto = "wisp-xfs-fixture\n0 0\nd--755 0 0\n"
        var fileCounter = 0
        var smallSources: [[UInt8]: String] = [:]

        func addFile(_ path: String, _ name: String, content: [UInt8], mode: String = "---644", uid: UInt32 = 0, gid: UInt32 = 0, indent: String) throws {
            // Small contents repeat across thousands of entries: write each once.
            let source: String
            if content.count <= 64, let shared = smallSources[content] {
                source = shared
            } else {
                fileCounter += 1
                source = "\(sourceRoot)/f\(fileCounter)"
                try Data(content).write(to: URL(fileURLWithPath: source))
                if content.count <= 64 { smallSources[content] = source }
            }
            proto += "\(indent)\(name) \(mode) \(uid) \(gid) \(source)\n"
            var perms = UInt32(mode.suffix(3), radix: 8) ?? 0
            if mode.dropFirst().first == "u" { perms |= 0o4000 }
            if mode.dropFirst(2).first == "g" { perms |= 0o2000 }
            expected["\(path)/\(name)"] = .file(content: content, permissions: perms, uid: uid, gid: gid)
        }
        func beginDirectory(_ path: String, _ name: String, mode: String = "d--755", indent: String) {
            proto += "\(indent)\(name) \(mode) 0 0\n"
            expected["\(path)/\(name)"] = .directory(permissions: UInt32(mode.suffix(3), radix: 8) ?? 0)
        }
        func endDirectory(indent: String) { proto += "\(indent)$\n" }

        // Files of many sizes at the root, around block and extent boundaries.
        // (A compact tree leaves out the large files, for fast corruption runs.)
        let sizes = [0, 1, 100, 511, 512, 1023, 1024, 4095, 4096, 4097, 65539] + (compact ? [] : [1 << 20, 3 << 20 | 5])
        for (i, size) in sizes.enumerated() {
            try addFile("", "size-\(i)-\(size)", content: random.bytes(size), indent: " ")
        }
        try addFile("", "setuid", content: random.bytes(10), mode: "-u-755", uid: 1000, gid: 100, indent: " ")
        try addFile("", "setgid", content: random.bytes(10), mode: "--g750", uid: 65534, gid: 4242, indent: " ")
        try addFile("", "holes", content: random.bytes(compact ? 128 * blockSize : 2 << 20), indent: " ")
        try addFile("", "unwritten", content: random.bytes(64 << 10), indent: " ")
        try addFile("", "xattrs-small", content: [1, 2, 3], indent: " ")
        try addFile("", "xattrs-leaf", content: [4], indent: " ")
        try addFile("", "xattrs-node", content: [], indent: " ")
        try addFile("", "xattrs-remote", content: [5], indent: " ")
        try addFile("", "caf\u{e9}-\u{1F600}", content: Array("unicode".utf8), indent: " ")
        try addFile("", String(repeating: "L", count: 255), content: Array("long name".utf8), indent: " ")

        // Symlinks: inline and remote (longer than any inode literal area).
        proto += " short-link l--777 0 0 size-2-100\n"
        expected["/short-link"] = .symlink(target: "size-2-100")
        let longTarget = (0..<100).map { _ in "segment-\(random.next() % 100)" }.joined(separator: "/").prefix(900)
        proto += " long-link l--777 0 0 \(longTarget)\n"
        expected["/long-link"] = .symlink(target: String(longTarget))
        proto += " abs-link l--777 0 0 /deep/d1/d2\n"
        expected["/abs-link"] = .symlink(target: "/deep/d1/d2")

        // Device nodes (minor above 16 bits exercises the 14/18-bit split) and a FIFO.
        proto += " null c--666 0 0 1 3\n"
        expected["/null"] = .device(.characterDevice, major: 1, minor: 3, permissions: 0o666)
        proto += " disk b--660 0 6 8 70000\n"
        expected["/disk"] = .device(.blockDevice, major: 8, minor: 70000, permissions: 0o660)
        proto += " pipe p--600 0 0\n"
        expected["/pipe"] = .fifo(permissions: 0o600)

        // A deep chain of directories.
        var path = ""
        var indent = " "
        beginDirectory(path, "deep", indent: indent)
        path = "/deep"
        for level in 1...24 {
            indent += " "
            beginDirectory(path, "d\(level)", indent: indent)
            path += "/d\(level)"
        }
        try addFile(path, "bottom", content: Array("bottom of the tree\n".utf8), indent: indent + " ")
        for _ in 0...24 {
            endDirectory(indent: indent)
            indent = String(indent.dropLast())
        }

        for (name, count, fileSize, nameLength) in directories {
            beginDirectory("", name, indent: " ")
            for i in 0..<count {
                let entry = "entry-\(i)-" + String(repeating: "x", count: Int(random.next() % UInt64(nameLength + 1)))
                try addFile("/\(name)", entry, content: random.bytes(fileSize), indent: "  ")
            }
            endDirectory(indent: " ")
        }
        proto += "$\n"

        let protoPath = directory.file("proto")
        try proto.write(toFile: protoPath, atomically: true, encoding: .utf8)
        try ToolRunner.check("truncate", ["-s", imageSize, image])
        try ToolRunner.check("mkfs.xfs", ["-q", "-f", "-L", "wisp-xfs"] + options + ["-p", protoPath, image],
                             environment: Self.smallFilesystemEnvironment)
        if isV5 { try addRemoteSymlinkHeader("long-link") }
        // xfs_repair is the judge that the image (after the header fix) is a valid XFS.
        try ToolRunner.check("xfs_repair", ["-n", image])
        try addDebuggerCases()
    }

    /// Runs xfs_db in expert mode on the image with the given commands.
    @discardableResult
    func db(_ commands: [String], writable: Bool = true) throws -> String {
        var args = writable ? ["-x"] : ["-r"]
        for c in commands { args += ["-c", c] }
        let result = try ToolRunner.check("xfs_db", args + [image])
        return result.stdoutText
    }

    var isV5: Bool { (try? db(["version"], writable: false))?.contains("CRC") ?? false }

    func forkField(_ path: String) throws -> String {
        // v5 and v4 inodes name the data fork u3 and u, respectively.
        let out = try db(["path \(path)", "print u3"], writable: false)
        return out.contains("u3.bmx") ? "u3" : "u"
    }

    /// mkfs.xfs 6.1 writes remote symlink targets on v5 filesystems without the XSLM
    /// header the kernel requires (xfs_repair would junk them). Rewrite the block the way
    /// the kernel lays it out: header (magic, offset, bytes, CRC, UUID, owner, sector,
    /// LSN) followed by the target, so the reader is tested against the real format.
    private func addRemoteSymlinkHeader(_ name: String) throws {
        let listing = try db(["ls /"], writable: false)
        guard let line = listing.split(separator: "\n").first(where: { $0.hasSuffix(" \(name) (good)") }),
              let ino = UInt64(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else {
            throw WispError.notFound("xfs_db ls / did not list \(name): \(listing)")
        }
        let bmap = try db(["path /\(name)", "bmap"], writable: false)
        guard let startText = bmap.components(separatedBy: "startblock ").dropFirst().first?.split(separator: " ").first,
              let countText = bmap.components(separatedBy: "count ").dropFirst().first?.split(separator: " ").first,
              let count = Int(countText) else {
            throw WispError.notFound("xfs_db bmap of \(name): \(bmap)")
        }
        let converted = try db(["convert fsblock \(startText) byte"], writable: false)
        guard let byteText = converted.split(separator: "(").dropFirst().first?.prefix(while: { $0 != ")" }),
              let byteOffset = UInt64(byteText) else {
            throw WispError.notFound("xfs_db convert: \(converted)")
        }
        let uuidText = try db(["uuid"], writable: false)
        let hex = uuidText.split(separator: "=").last.map { $0.filter(\.isHexDigit) } ?? ""
        var uuid: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex, let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) {
            uuid.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        guard uuid.count == 16, case .symlink(let target) = expected["/\(name)"] else {
            throw WispError.notFound("xfs_db uuid: \(uuidText)")
        }
        let targetBytes = Array(target.utf8)
        var block = [UInt8](repeating: 0, count: count * blockSize)
        guard targetBytes.count + 56 <= block.count else { throw WispError.invalidArgument("target too long for the block") }
        block.putBE32(0x5853_4C4D, at: 0)
        block.putBE32(0, at: 4)
        block.putBE32(UInt32(targetBytes.count), at: 8)
        block.replaceSubrange(16..<32, with: uuid)
        block.putBE64(ino, at: 32)
        block.putBE64(byteOffset / 512, at: 40)
        block.replaceSubrange(56..<(56 + targetBytes.count), with: targetBytes)
        block.putLE32(CRC32C.checksum(block), at: 12)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: image))
        try handle.seek(toOffset: byteOffset)
        try handle.write(contentsOf: Data(block))
        try handle.close()
    }

    private func addDebuggerCases() throws {
        let fork = try forkField("/holes")
        // A hole before and after 10 mapped blocks: the mapping moves to logical block 100.
        guard case .file(let content, let p, let u, let g) = expected["/holes"] else { return }
        try db(["path /holes", "write \(fork).bmx[0].startoff 100", "write \(fork).bmx[0].blockcount 10"])
        var holes = [UInt8](repeating: 0, count: content.count)
        holes.replaceSubrange((100 * blockSize)..<(110 * blockSize), with: content[0..<(10 * blockSize)])
        expected["/holes"] = .file(content: holes, permissions: p, uid: u, gid: g)
        // Preallocated-but-unwritten: reads as zeros whatever the blocks hold.
        try db(["path /unwritten", "write \(fork).bmx[0].extentflag 1"])
        if case .file(let c, let p, let u, let g) = expected["/unwritten"] {
            expected["/unwritten"] = .file(content: [UInt8](repeating: 0, count: c.count), permissions: p, uid: u, gid: g)
        }
        func v(_ n: Int) -> [UInt8] { [UInt8](repeating: UInt8(ascii: "v"), count: n) }
        // Shortform attributes in three namespaces.
        try db(["path /xattrs-small", "attr_set -u -v 5 color", "attr_set -r -v 7 trusted-one", "attr_set -s -v 12 selinux"])
        expectedXattrs["/xattrs-small"] = ["user.color": v(5), "trusted.trusted-one": v(7), "security.selinux": v(12)]
        // A leaf block: more than the inode literal area holds.
        var leaf: [String: [UInt8]] = [:]
        var commands = ["path /xattrs-leaf"]
        for i in 0..<20 { commands.append("attr_set -u -v \(50 + i) leafattr\(i)"); leaf["user.leafattr\(i)"] = v(50 + i) }
        try db(commands)
        expectedXattrs["/xattrs-leaf"] = leaf
        // A node (da btree) fork: more entries than one leaf block holds.
        var node: [String: [UInt8]] = [:]
        commands = ["path /xattrs-node"]
        let nodeCount = blockSize >= 4096 ? 300 : 120
        for i in 0..<nodeCount { commands.append("attr_set -u -v 40 nodeattr-\(i)"); node["user.nodeattr-\(i)"] = v(40) }
        try db(commands)
        expectedXattrs["/xattrs-node"] = node
        // Remote values, stored in their own blocks outside the leaf.
        try db(["path /xattrs-remote", "attr_set -u -v 9000 big", "attr_set -s -v 3 small"])
        expectedXattrs["/xattrs-remote"] = ["user.big": v(9000), "security.small": v(3)]
    }
}
