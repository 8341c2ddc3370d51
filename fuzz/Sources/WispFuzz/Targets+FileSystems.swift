import FileSystems
import WispCore

/// Each filesystem reader, opened on the input and walked as `wisp fs ls -R` and
/// `wisp fs cat` would: every directory listed, every inode stat'ed, files and symlinks
/// read, extended attributes listed (bounded, so one input stays fast).
extension FuzzTargets {
    static let fileSystems: [FuzzTarget] = [
        fileSystem(.ext4, "ext4 superblock, group descriptors, inodes, extents, block maps, htree dirs, xattrs"),
        fileSystem(.xfs, "XFS superblock, AG headers, inodes, extent lists and btrees, all directory forms, attrs"),
        fileSystem(.btrfs, "btrfs superblock, chunk map, trees, subvolumes, inline/regular/compressed extents"),
        fileSystem(.vfat, "FAT12/16/32 boot sector, FATs, cluster chains, long names"),
        fileSystem(.iso9660, "ISO 9660 volume descriptors, path table, directory records, Rock Ridge, Joliet, multi-extent files"),
    ]

    static func fileSystem(_ kind: FileSystemKind, _ summary: String) -> FuzzTarget {
        let name = kind == .vfat ? "fat" : kind.rawValue
        return FuzzTarget(name: name, summary: summary) { input in
            let device = FuzzInput.device(input, name: "\(name).img")
            attempt { _ = try FileSystemProbe.probe(device) }
            attempt {
                let fs = try FileSystemOpener.open(device, as: kind)
                try walk(fs)
                for path in ["/etc/os-release", "/hello", "/dir/link", "/boot/grub/grub.cfg"] {
                    attempt { _ = try fs.readFile(path, limit: 1 << 16) }
                }
            }
        }
    }

    static func walk(_ fs: any FileSystem) throws {
        var queue: [(inode: UInt64, depth: Int)] = [(fs.rootInode, 0)]
        var visited = 0
        while !queue.isEmpty, visited < 400 {
            let (directory, depth) = queue.removeFirst()
            let entries = try fs.list(directory: directory)
            for entry in entries.prefix(200) {
                visited += 1
                attempt {
                    let stat = try fs.stat(inode: entry.inode)
                    attempt { _ = try fs.xattrs(inode: entry.inode) }
                    switch stat.type {
                    case .directory where depth < 8:
                        queue.append((entry.inode, depth + 1))
                    case .regular:
                        _ = try fs.read(inode: entry.inode, offset: 0, count: 8192)
                        if stat.size > 8192 {
                            _ = try fs.read(inode: entry.inode, offset: stat.size - 4096, count: 4096)
                        }
                    case .symlink:
                        _ = try fs.readlink(inode: entry.inode)
                    default:
                        break
                    }
                }
            }
        }
    }
}
