import WispCore

/// Read-only FAT12/16/32 with VFAT long names: EFI system partitions and cloud-init seeds.
///
/// Inode numbers: a file or directory is numbered by the byte offset of its 32-byte short
/// directory entry on the device, which is stable for as long as the volume is unchanged
/// and unique (two entries cannot share a slot). The root directory has no entry and is
/// inode 1, an offset no entry can have (they are 32-byte aligned past the boot sector).
///
/// POSIX view, matching the Linux vfat driver with its defaults: owner and group 0,
/// directories 0755, files 0755 (0555 when the read-only attribute is set), times read as
/// UTC, one link per file and 2 + subdirectories per directory. A file's size is capped by
/// its cluster chain, so a lying size field cannot make reads run off the chain.
public final class FATFileSystem: FileSystem, @unchecked Sendable {
    public let device: any BlockDevice
    let boot: FATBootSector
    let fat: FATTable
    public let label: String?
    public let uuid: String?
    public var typeName: String { "vfat" }
    public var rootInode: UInt64 { 1 }
    /// "FAT12", "FAT16" or "FAT32".
    public var variantName: String { "FAT\(boot.variant.rawValue)" }

    /// Directories larger than this (the spec allows 65536 entries, 2 MiB) are refused.
    static let maxDirectoryBytes: UInt64 = 4 << 20

    public init(device: any BlockDevice) throws {
        self.device = device
        boot = try FATBootSector.parse(device)
        fat = FATTable(device: device, boot: boot)
        uuid = boot.volumeID.map { id in
            func hex4(_ v: UInt32) -> String {
                let t = String(v, radix: 16, uppercase: true)
                return String(repeating: "0", count: 4 - t.count) + t
            }
            return hex4(id >> 16) + "-" + hex4(id & 0xFFFF)
        }
        // Like blkid: the root directory's label entry wins over the boot sector's copy.
        // A damaged root directory is reported when it is listed, not here.
        var rootLabel: String?
        _ = try? Self.readDirectory(device: device, boot: boot, fat: fat, start: nil, volumeLabel: &rootLabel)
        label = rootLabel.flatMap { $0.isEmpty ? nil : $0 } ?? boot.label
    }

    // MARK: FileSystem

    public func stat(inode: UInt64) throws -> FileStat {
        if inode == rootInode {
            let entries = try directoryRecords(cluster: nil)
            let bytes = boot.variant == .fat32
                ? try chainBytes(fat.runs(from: boot.rootCluster, what: "the root directory"))
                : boot.rootDirBytes
            return FileStat(inode: rootInode, type: .directory, permissions: 0o755, size: bytes,
                            linkCount: 2 + UInt32(entries.filter(\.isDirectory).count))
        }
        let record = try record(inode: inode)
        if record.isDirectory {
            let entries = try directoryRecords(cluster: record.firstCluster, what: "the directory whose entry is at byte \(inode)")
            let runs = try fat.runs(from: record.firstCluster, what: "the directory whose entry is at byte \(inode)")
            return FileStat(inode: inode, type: .directory, permissions: 0o755, size: chainBytes(runs),
                            linkCount: 2 + UInt32(entries.filter(\.isDirectory).count),
                            accessTime: record.access, modificationTime: record.modification,
                            changeTime: record.modification)
        }
        return FileStat(inode: inode, type: .regular, permissions: record.isReadOnly ? 0o555 : 0o755,
                        size: try cappedSize(record, inode: inode), linkCount: 1,
                        accessTime: record.access, modificationTime: record.modification,
                        changeTime: record.modification)
    }

    public func list(directory inode: UInt64) throws -> [DirectoryEntry] {
        let records: [FATDirectoryRecord]
        if inode == rootInode {
            records = try directoryRecords(cluster: nil)
        } else {
            let record = try record(inode: inode)
            guard record.isDirectory else {
                throw WispError.invalidArgument("\(device.name): the FAT directory entry at byte \(inode) is not a directory")
            }
            records = try directoryRecords(cluster: record.firstCluster, what: "the directory whose entry is at byte \(inode)")
        }
        return records.map { DirectoryEntry(name: $0.name, inode: $0.entryOffset, type: $0.isDirectory ? .directory : .regular) }
    }

    public func read(inode: UInt64, offset: UInt64, count: Int) throws -> [UInt8] {
        guard count >= 0 else { throw WispError.invalidArgument("\(device.name): negative read length") }
        guard inode != rootInode else { throw WispError.invalidArgument("\(device.name): the root is a directory") }
        let record = try record(inode: inode)
        guard !record.isDirectory else {
            throw WispError.invalidArgument("\(device.name): the FAT directory entry at byte \(inode) is a directory")
        }
        // FAT has no sparse files: a size beyond the data area is corrupt, not a hole.
        let dataArea = UInt64(boot.clusterCount) * boot.clusterSize
        guard UInt64(record.size) <= dataArea else {
            throw WispError.corrupt(device.name, "FAT directory entry", at: inode + 28,
                                    "file size \(record.size) exceeds the largest file this filesystem can hold (\(dataArea) bytes: \(boot.clusterCount) clusters of \(boot.clusterSize) bytes)")
        }
        let size = try cappedSize(record, inode: inode)
        guard offset < size, count > 0 else { return [] }
        let wanted = Int(min(UInt64(count), size - offset))
        let runs = try fileRuns(record, size: size, inode: inode)
        var output = [UInt8](repeating: 0, count: wanted)
        var produced = 0
        var runStart: UInt64 = 0   // file offset where the current run begins
        for run in runs where produced < wanted {
            let runBytes = UInt64(run.count) * boot.clusterSize
            let runEnd = runStart + runBytes
            let position = offset + UInt64(produced)
            if position < runEnd {
                let within = position - runStart
                let take = Int(min(runEnd - position, UInt64(wanted - produced)))
                let diskOffset = boot.offset(ofCluster: run.first) + within
                try output.withUnsafeMutableBytes { buffer in
                    let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[produced..<(produced + take)])
                    try device.read(into: slice, at: diskOffset)
                }
                produced += take
            }
            runStart = runEnd
        }
        return output
    }

    public func readlink(inode: UInt64) throws -> String {
        throw WispError.invalidArgument("\(device.name): FAT has no symbolic links (directory entry at byte \(inode))")
    }

    public func xattrs(inode: UInt64) throws -> [String: [UInt8]] { [:] }

    // MARK: Internals

    /// The short entry behind an inode number, checked to be a live file or directory entry.
    func record(inode: UInt64) throws -> FATDirectoryRecord {
        let lowest = boot.variant == .fat32 ? boot.dataOffset : boot.rootDirOffset
        guard inode % 32 == 0, inode >= lowest, inode <= device.size, device.size - inode >= 32 else {
            throw WispError.notFound("\(device.name): byte \(inode) is not the position of a FAT directory entry")
        }
        let bytes = try device.read(at: inode, count: 32)
        let attributes = bytes[11]
        guard bytes[0] != 0, bytes[0] != 0xE5, attributes & 0x3F != FATDirectoryRecord.attrLongName,
              attributes & FATDirectoryRecord.attrVolume == 0 else {
            throw WispError.notFound("\(device.name): byte \(inode) does not hold a live FAT directory entry")
        }
        return FATDirectoryRecord.parseShort(bytes[...], offset: inode, variant: boot.variant)
    }

    func chainBytes(_ runs: [FATClusterRun]) -> UInt64 {
        runs.reduce(0) { $0 + UInt64($1.count) * boot.clusterSize }
    }

    /// The file's size, cut to what its cluster chain can hold.
    func cappedSize(_ record: FATDirectoryRecord, inode: UInt64) throws -> UInt64 {
        guard record.size > 0, record.firstCluster != 0 else { return 0 }
        let runs = try fileRuns(record, size: UInt64(record.size), inode: inode)
        return min(UInt64(record.size), chainBytes(runs))
    }

    func fileRuns(_ record: FATDirectoryRecord, size: UInt64, inode: UInt64) throws -> [FATClusterRun] {
        guard size > 0, record.firstCluster != 0 else { return [] }
        let needed = (size + boot.clusterSize - 1) / boot.clusterSize
        return try fat.runs(from: record.firstCluster, limit: needed, what: "the file whose entry is at byte \(inode)")
    }

    func directoryRecords(cluster: UInt32?, what: String = "the root directory") throws -> [FATDirectoryRecord] {
        var ignored: String?
        return try Self.readDirectory(device: device, boot: boot, fat: fat, start: cluster, what: what, volumeLabel: &ignored)
    }

    /// Reads a directory's entries: the fixed root region (FAT12/16, `start` nil), the root
    /// cluster chain (FAT32, `start` nil) or a subdirectory's chain.
    static func readDirectory(device: any BlockDevice, boot: FATBootSector, fat: FATTable, start: UInt32?,
                              what: String = "the root directory", volumeLabel: inout String?) throws -> [FATDirectoryRecord] {
        var segments: [(offset: UInt64, bytes: [UInt8])] = []
        if start == nil, boot.variant != .fat32 {
            segments.append((boot.rootDirOffset, try device.read(at: boot.rootDirOffset, count: Int(boot.rootDirBytes))))
        } else {
            let first = start ?? boot.rootCluster
            guard first != 0 else {
                throw WispError.corrupt(device.name, "FAT directory entry of \(what)", "it has no clusters")
            }
            let runs = try fat.runs(from: first, what: what)
            var total: UInt64 = 0
            for run in runs {
                let length = UInt64(run.count) * boot.clusterSize
                total += length
                guard total <= maxDirectoryBytes else {
                    throw WispError.corrupt(device.name, "FAT directory \(what)", at: boot.offset(ofCluster: first),
                                            "longer than \(maxDirectoryBytes) bytes, more than a FAT directory may hold")
                }
                let offset = boot.offset(ofCluster: run.first)
                segments.append((offset, try device.read(at: offset, count: Int(length))))
            }
        }
        return FATDirectoryRecord.parse(segments: segments, variant: boot.variant, volumeLabel: &volumeLabel)
    }
}
