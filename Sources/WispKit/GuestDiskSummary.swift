import FileSystems
import Partitions
import WispCore

/// What `wisp image info` reports about the inside of an image: the partition table and,
/// per partition, the filesystem found there.
public struct GuestDiskSummary: Sendable, Codable, Equatable {
    public struct FileSystemInfo: Sendable, Codable, Equatable {
        public var type: String
        public var label: String?
        public var uuid: String?
        /// Why Wisp cannot read files from it, if it cannot.
        public var problem: String?
    }

    public struct PartitionInfo: Sendable, Codable, Equatable {
        public var number: Int
        public var start: UInt64
        public var size: UInt64
        public var type: String?
        public var typeName: String?
        public var name: String?
        public var uuid: String?
        public var bootable: Bool
        public var attributes: UInt64
        public var filesystem: FileSystemInfo?
    }

    public var scheme: String
    public var sectorSize: Int
    public var diskGUID: String?
    public var warnings: [String]
    public var partitions: [PartitionInfo]

    /// Human-readable lines, one per partition, under a heading.
    public var textLines: [String] {
        var lines: [String] = []
        switch scheme {
        case "none": lines.append("partition table: none (filesystem on the whole disk)")
        default:
            lines.append("partition table: \(scheme), \(sectorSize)-byte sectors" + (diskGUID.map { ", disk id \($0)" } ?? ""))
        }
        for warning in warnings { lines.append("  warning: \(warning)") }
        for p in partitions {
            var line = "  \(p.number == 0 ? "disk" : String(p.number)): \(ByteSize.format(p.size)) at \(p.start)"
            if let typeName = p.typeName ?? p.type { line += ", \(typeName)" }
            if let name = p.name { line += ", name \"\(name)\"" }
            if p.bootable { line += ", bootable" }
            if let fs = p.filesystem {
                line += "; \(fs.type)"
                if let label = fs.label { line += " label \"\(label)\"" }
                if let uuid = fs.uuid { line += " uuid \(uuid)" }
                if let problem = fs.problem { line += " (\(problem))" }
            }
            lines.append(line)
        }
        return lines
    }
}

extension GuestDisk {
    public var summary: GuestDiskSummary {
        GuestDiskSummary(
            scheme: table.scheme.rawValue, sectorSize: table.sectorSize, diskGUID: table.diskGUID,
            warnings: table.warnings,
            partitions: table.partitions.map { partition in
                let volume = volumes.first { $0.partition.number == partition.number }
                let fs = volume.flatMap { v -> GuestDiskSummary.FileSystemInfo? in
                    guard let kind = v.kind else { return nil }
                    return GuestDiskSummary.FileSystemInfo(type: v.fileSystem?.typeName ?? kind.rawValue,
                                                           label: v.fileSystem?.label, uuid: v.fileSystem?.uuid,
                                                           problem: v.problem)
                }
                return GuestDiskSummary.PartitionInfo(
                    number: partition.number, start: partition.startOffset, size: partition.size,
                    type: partition.typeCode, typeName: partition.typeName, name: partition.name,
                    uuid: partition.uniqueGUID, bootable: partition.bootable, attributes: partition.attributes,
                    filesystem: fs)
            })
    }
}
