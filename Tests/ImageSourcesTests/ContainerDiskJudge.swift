import Foundation
import FileSystems
import OCI
import Partitions
import WispCore
import WispTestSupport

/// Reads a disk Wisp built from a container image back, and has the real tools judge it:
/// sgdisk verifies the table, e2fsck the root filesystem (copied out of the partition),
/// and the tree read through the ext4 reader is compared with `umoci unpack` of the image.
enum ContainerDiskJudge {
    /// Paths Wisp may add to the image's tree: its boot entry (and the directories it
    /// needs) and ext4's lost+found. Only where the image has no such path.
    static func added(_ path: String) -> Bool {
        ["lost+found", "boot", "boot/loader", "boot/loader/entries"].contains(path) || path.hasPrefix("boot/loader/entries/wisp-")
    }

    static func rootPartition(_ disk: String) throws -> (table: PartitionTable, device: any BlockDevice) {
        let device = try FileBlockDevice(path: disk)
        let table = try PartitionTable.read(from: device)
        guard table.scheme == .gpt, table.partitions.count == 1 else {
            throw WispError(.failed, "\(disk): expected a GPT with one partition, got \(table.scheme) with \(table.partitions.count)")
        }
        return (table, try table.partitions[0].device(on: device))
    }

    /// sgdisk -v and e2fsck -fn on the root filesystem; throws with their output unless clean.
    static func checkWithRealTools(_ disk: String, work: TemporaryDirectory) throws {
        let verify = try ToolRunner.check("sgdisk", ["-v", disk])
        guard verify.stdoutText.contains("No problems found") else {
            throw WispError(.failed, "sgdisk -v \(disk): \(verify.stdoutText)")
        }
        let (table, _) = try rootPartition(disk)
        let part = work.file("root.ext4")
        try ToolRunner.check("dd", ["if=\(disk)", "of=\(part)", "bs=1M", "skip=\(table.partitions[0].startOffset >> 20)",
                                    "count=\(table.partitions[0].size >> 20)", "conv=sparse", "status=none"])
        try ToolRunner.check("e2fsck", ["-fn", part])
        try FileManager.default.removeItem(atPath: part)
    }

    /// The root filesystem's tree as `RootFSRecord`s, the way `HostTree` records umoci's.
    static func records(_ disk: String) throws -> [String: RootFSRecord] {
        let fs = try FileSystemOpener.open(try rootPartition(disk).device)
        var records: [String: RootFSRecord] = [:]
        var inodes: [UInt64: [String]] = [:]
        var pending: [(String, UInt64)] = [("", fs.rootInode)]
        while let (path, inode) = pending.popLast() {
            let info = try fs.stat(inode: inode)
            var record = RootFSRecord(kind: "", permissions: UInt16(info.permissions & 0o7777), uid: info.uid, gid: info.gid,
                                      mtime: RootFSTimestamp(seconds: info.modificationTime.seconds,
                                                             nanoseconds: info.modificationTime.nanoseconds),
                                      xattrs: try fs.xattrs(inode: inode))
            switch info.type {
            case .directory:
                record.kind = "dir"
                record.mtime = nil
                for entry in try fs.list(directory: inode) where entry.name != "." && entry.name != ".." {
                    pending.append((path.isEmpty ? entry.name : "\(path)/\(entry.name)", entry.inode))
                }
            case .regular:
                record.kind = "file"
                record.size = info.size
                let digester = SHA256Digester()
                var offset: UInt64 = 0
                while offset < info.size {
                    let chunk = try fs.read(inode: inode, offset: offset, count: Int(min(4 << 20, info.size - offset)))
                    guard !chunk.isEmpty else { break }
                    digester.update(chunk)
                    offset += UInt64(chunk.count)
                }
                record.sha256 = digester.finalize().hex
            case .symlink:
                record.kind = "symlink -> \(try fs.readlink(inode: inode))"
                record.permissions = 0
            case .characterDevice: record.kind = "char \(info.deviceMajor),\(info.deviceMinor)"
            case .blockDevice: record.kind = "block \(info.deviceMajor),\(info.deviceMinor)"
            case .fifo: record.kind = "fifo"
            default: record.kind = "other"
            }
            if info.type != .directory && info.linkCount > 1 { inodes[inode, default: []].append(path) }
            records[path] = record
        }
        for members in inodes.values where members.count > 1 {
            for member in members { records[member]?.links = members.sorted() }
        }
        return records
    }

    /// Differences between the disk's tree and umoci's, leaving out what Wisp adds and the
    /// root (whose metadata umoci takes from the bundle directory).
    static func treeDifferences(disk: [String: RootFSRecord], umoci: [String: RootFSRecord]) -> [String] {
        let ours = disk.filter { !$0.key.isEmpty && !(umoci[$0.key] == nil && added($0.key)) }
        var judge = umoci
        judge[""] = nil
        return differences(ours, judge)
    }
}
