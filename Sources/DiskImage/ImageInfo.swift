import Foundation
import WispCore

/// What `wisp image info` reports about one image and its backing chain (Codable for --json).
public struct ImageInfo: Codable, Sendable, Equatable {
    public var filename: String
    public var format: ImageFormat
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
    public var backingFile: String?
    public var backingFormat: String?
    /// The backing file's path as resolved against this image's directory.
    public var resolvedBackingFile: String?
    /// The rest of the chain, nearest first.
    public var backingChain: [ImageInfo]?

    /// Reads the image at `path` (format from its magic) and its whole backing chain.
    public static func read(path: String) throws -> ImageInfo {
        let device = try DiskImageFile.open(path)
        var info = try describe(device, path: path)
        var chain: [ImageInfo] = []
        var current: (any BlockDevice)? = (device as? Qcow2Image)?.backing
        var currentPath = (device as? Qcow2Image)?.backingPath
        while let d = current, let p = currentPath {
            chain.append(try describe(d, path: p))
            current = (d as? Qcow2Image)?.backing
            currentPath = (d as? Qcow2Image)?.backingPath
        }
        if !chain.isEmpty { info.backingChain = chain }
        return info
    }

    static func describe(_ device: any BlockDevice, path: String) throws -> ImageInfo {
        var st = stat()
        guard stat(path, &st) == 0 else { throw WispError.posix("stat", path, errno: errno) }
        var info = ImageInfo(filename: path, format: .raw, virtualSize: device.size,
                             diskSize: UInt64(st.st_blocks) * 512, fileLength: UInt64(st.st_size))
        if let q = device as? Qcow2Image {
            let h = q.headerSnapshot
            info.format = .qcow2
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
            info.resolvedBackingFile = q.backingPath
        }
        return info
    }

    init(filename: String, format: ImageFormat, virtualSize: UInt64, diskSize: UInt64, fileLength: UInt64) {
        self.filename = filename
        self.format = format
        self.virtualSize = virtualSize
        self.diskSize = diskSize
        self.fileLength = fileLength
    }

    /// qemu-img-like human text.
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
            if let extendedL2 { lines.append("    extended l2: \(extendedL2)") }
            if let corrupt { lines.append("    corrupt: \(corrupt)") }
            if let dirty, dirty { lines.append("    dirty: true (lazy refcounts were not flushed; run 'wisp image check --repair')") }
            if let snapshots, snapshots > 0 { lines.append("    internal snapshots: \(snapshots)") }
            if let bitmaps, bitmaps { lines.append("    bitmaps: present") }
        }
        for (i, b) in (backingChain ?? []).enumerated() {
            lines.append("")
            lines.append("backing chain [\(i + 1)]:")
            lines += b.text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }
        }
        return lines.joined(separator: "\n")
    }
}
