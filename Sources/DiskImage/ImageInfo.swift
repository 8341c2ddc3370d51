import Foundation
import WispCore

/// What `wisp image info` reports about one image and its backing chain (Codable for
/// --json, with qemu-img's key names where qemu-img reports the same thing).
public struct ImageInfo: Codable, Sendable, Equatable {
    /// The image as named: the path given for the top, the full backing file name (the
    /// recorded name joined to the referencing image's directory) for the others.
    public var filename: String
    /// The canonical path: no symbolic links, no `.` or `..`.
    public var realPath: String
    public var format: ImageFormat
    /// Whether the format was given, recorded by the referencing image or probed.
    public var formatSource: BackingChain.FormatSource
    public var virtualSize: UInt64
    /// Bytes the file occupies on disk (allocated blocks), as qemu-img's "disk size".
    public var diskSize: UInt64
    /// The file's length in bytes.
    public var fileLength: UInt64
    public var clusterSize: Int?
    public var qcow2Version: UInt32?
    public var compressionType: Qcow2CompressionType?
    public var refcountBits: Int?
    public var lazyRefcounts: Bool?
    public var extendedL2: Bool?
    public var dirty: Bool?
    public var corrupt: Bool?
    public var snapshots: Int?
    public var bitmaps: Bool?
    /// The backing file name as recorded in the header.
    public var backingFile: String?
    public var backingFormat: String?
    /// The backing file's name joined to this image's directory (as QEMU resolves it).
    public var resolvedBackingFile: String?
    /// The external data file name as recorded in the header.
    public var dataFile: String?
    public var dataFileRaw: Bool?
    /// The data file's name joined to this image's directory.
    public var resolvedDataFile: String?
    /// The data file's canonical path.
    public var dataFileRealPath: String?
    /// qemu-img's "format-specific": qcow2 and vmdk with qemu's keys, vhd/vhdx/vdi with
    /// Wisp's (subformat, block and sector sizes, unique ids, parent locators).
    public var formatSpecific: FormatSpecificInfo?
    /// The rest of the chain, nearest first.
    public var backingChain: [ImageInfo]?

    enum CodingKeys: String, CodingKey {
        case filename
        case realPath = "real-path"
        case format
        case formatSource = "format-source"
        case virtualSize = "virtual-size"
        case diskSize = "actual-size"
        case fileLength = "file-length"
        case clusterSize = "cluster-size"
        case qcow2Version = "qcow2-version"
        case compressionType = "compression-type"
        case refcountBits = "refcount-bits"
        case lazyRefcounts = "lazy-refcounts"
        case extendedL2 = "extended-l2"
        case dirty = "dirty-flag"
        case corrupt
        case snapshots
        case bitmaps
        case backingFile = "backing-filename"
        case backingFormat = "backing-filename-format"
        case resolvedBackingFile = "full-backing-filename"
        case dataFile = "data-file"
        case dataFileRaw = "data-file-raw"
        case resolvedDataFile = "full-data-file"
        case dataFileRealPath = "data-file-real-path"
        case formatSpecific = "format-specific"
        case backingChain = "backing-chain"
    }

    /// Reads the image at `path` and its whole chain, checked under `policy`, from their
    /// headers (nothing else is read, as with qemu-img info). `format` as in
    /// `BackingChain.resolve`.
    public static func read(path: String, format: ImageFormat? = nil,
                            policy: ExternalReferencePolicy = .confinedToImageDirectory) throws -> ImageInfo {
        try ImageInfo(chain: try BackingChain.resolve(path: path, format: format, policy: policy))
    }

    /// The report for a resolved chain: its top, with the other members in `backingChain`.
    public init(chain: BackingChain) throws {
        self = try Self.describe(chain.top, next: chain.members.dropFirst().first)
        var rest: [ImageInfo] = []
        for (i, member) in chain.members.enumerated().dropFirst() {
            rest.append(try Self.describe(member, next: i + 1 < chain.members.count ? chain.members[i + 1] : nil))
        }
        if !rest.isEmpty { backingChain = rest }
    }

    static func describe(_ member: BackingChain.Member, next: BackingChain.Member?) throws -> ImageInfo {
        var st = stat()
        guard stat(member.path, &st) == 0 else { throw WispError.posix("stat", member.name, errno: errno) }
        let isBlockDevice = member.fileType == .blockDevice
        var info = ImageInfo(filename: member.name, realPath: member.path, format: member.format,
                             formatSource: member.formatSource, virtualSize: member.virtualSize,
                             diskSize: isBlockDevice ? member.virtualSize : UInt64(max(0, st.st_blocks)) * 512,
                             fileLength: isBlockDevice ? member.virtualSize : UInt64(max(0, st.st_size)))
        if let (specific, clusterSize) = try FormatSpecificInfo.describe(member) {
            info.formatSpecific = specific
            info.clusterSize = clusterSize
        }
        if member.qcow2Header == nil, let parent = member.backingFile {
            info.backingFile = parent
            info.resolvedBackingFile = next?.name
        }
        if let h = member.qcow2Header {
            info.clusterSize = h.clusterSize
            info.qcow2Version = h.version
            info.compressionType = h.compressionType
            info.refcountBits = h.refcountBits
            info.lazyRefcounts = h.lazyRefcounts
            info.extendedL2 = h.hasExtendedL2
            info.dirty = h.isDirty
            info.corrupt = h.isCorrupt
            info.snapshots = Int(h.snapshotCount)
            info.bitmaps = h.hasBitmaps
            info.backingFile = h.backingFile
            info.backingFormat = h.backingFormat
            info.resolvedBackingFile = next?.name
            if let dataFile = member.dataFile {
                info.dataFile = dataFile.recordedName
                info.dataFileRaw = dataFile.isRaw
                info.resolvedDataFile = dataFile.name
                info.dataFileRealPath = dataFile.path
            }
        }
        return info
    }

    init(filename: String, realPath: String, format: ImageFormat, formatSource: BackingChain.FormatSource,
         virtualSize: UInt64, diskSize: UInt64, fileLength: UInt64) {
        self.filename = filename
        self.realPath = realPath
        self.format = format
        self.formatSource = formatSource
        self.virtualSize = virtualSize
        self.diskSize = diskSize
        self.fileLength = fileLength
    }

    /// qemu-img-like human text, then the resolved chain, then each backing image in full.
    public var text: String {
        var lines = ["image: \(filename)", "file format: \(format.rawValue)",
                     "virtual size: \(ByteSize.format(virtualSize)) (\(virtualSize) bytes)",
                     "disk size: \(ByteSize.format(diskSize))"]
        if let clusterSize { lines.append("cluster_size: \(clusterSize)") }
        if let backingFile {
            lines.append("backing file: \(backingFile)" + (resolvedBackingFile.map { $0 != backingFile ? " (actual path: \($0))" : "" } ?? ""))
        }
        if let backingFormat { lines.append("backing file format: \(backingFormat)") }
        if format == .qcow2 {
            lines.append("format specific information:")
            if let qcow2Version { lines.append("    compat: \(qcow2Version == 2 ? "0.10" : "1.1")") }
            if let compressionType { lines.append("    compression type: \(compressionType.rawValue)") }
            if let lazyRefcounts { lines.append("    lazy refcounts: \(lazyRefcounts)") }
            if let refcountBits { lines.append("    refcount bits: \(refcountBits)") }
            if let dataFile { lines.append("    data file: \(dataFile)" + (resolvedDataFile.map { $0 != dataFile ? " (actual path: \($0))" : "" } ?? "")) }
            if let dataFileRaw { lines.append("    data file raw: \(dataFileRaw)") }
            if let extendedL2 { lines.append("    extended l2: \(extendedL2)") }
            if let corrupt { lines.append("    corrupt: \(corrupt)") }
            if let dirty, dirty { lines.append("    dirty: true (lazy refcounts were not flushed; run 'wisp image check --repair')") }
            if let snapshots, snapshots > 0 { lines.append("    internal snapshots: \(snapshots)") }
            if let bitmaps, bitmaps { lines.append("    bitmaps: present") }
        } else if let formatSpecific {
            lines += formatSpecific.textLines
        }
        let members = [self] + (backingChain ?? [])
        if members.count > 1 || dataFile != nil {
            lines.append("resolved chain (every file the image reads, checked):")
            for m in members {
                lines.append("    \(m.realPath)  \(m.format.rawValue)  \(ByteSize.format(m.virtualSize)) (\(m.virtualSize) bytes)")
                if let data = m.dataFileRealPath { lines.append("        data file: \(data)") }
            }
        }
        for (i, b) in (backingChain ?? []).enumerated() {
            lines.append("")
            lines.append("backing chain [\(i + 1)]:")
            lines += b.text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }
        }
        return lines.joined(separator: "\n")
    }
}
