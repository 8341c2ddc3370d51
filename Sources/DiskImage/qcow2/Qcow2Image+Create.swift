import Foundation
import WispCore

extension Qcow2Image {
    /// Creates an empty qcow2 (version 3, lazy refcounts off, 16-bit refcounts) at `path`,
    /// atomically: the file appears complete or not at all, and an existing file is replaced.
    /// With `backingFile`, the image is an overlay: unwritten clusters read from it. A
    /// relative backing name is stored as given and resolved against `path`'s directory.
    /// The caller chose the backing file; `backingPolicy` governs the files *it* refers to
    /// (`.selfContained` for a base image from outside Wisp).
    public static func create(path: String, virtualSize: UInt64, clusterSize: Int = 65536,
                              backingFile: String? = nil, backingFormat: ImageFormat? = nil,
                              backingPolicy: ExternalReferencePolicy = .confinedToImageDirectory) throws {
        try create(path: path, virtualSize: virtualSize, clusterSize: clusterSize, backingFile: backingFile,
                   backingFormat: backingFormat, extendedL2: false, compressionType: .deflate,
                   backingPolicy: backingPolicy)
    }

    public static func create(path: String, virtualSize: UInt64, clusterSize: Int, backingFile: String?,
                              backingFormat: ImageFormat?, extendedL2: Bool,
                              compressionType: Qcow2CompressionType,
                              backingPolicy: ExternalReferencePolicy = .confinedToImageDirectory) throws {
        let layout = try Qcow2Layout(virtualSize: virtualSize, clusterSize: clusterSize, extendedL2: extendedL2)
        var format = backingFormat
        if let backingFile {
            // Validate the backing chain now rather than when the VM first reads it.
            try ChainResolver.refuseNonFileName(backingFile, field: "qcow2 backing file", referrer: path)
            let resolved = resolveBacking(backingFile, relativeTo: path)
            let chain = try BackingChain.resolve(path: resolved, format: backingFormat, policy: backingPolicy)
            _ = try DiskImageFile.open(chain)
            format = chain.top.format
        }
        let output = try AtomicOutput(path: path)
        do {
            try writeEmptyImage(to: output.file, layout: layout, backingFile: backingFile,
                                backingFormat: format, compressionType: compressionType)
            try output.commit()
        } catch {
            output.discard()
            throw error
        }
    }

    static func writeEmptyImage(to file: PosixFile, layout: Qcow2Layout, backingFile: String?,
                                backingFormat: ImageFormat?, compressionType: Qcow2CompressionType) throws {
        let cs = layout.clusterSize
        // Cluster 0 header, then L1, refcount table, refcount blocks.
        let l1Clusters = layout.l1Clusters
        let metadataStart = UInt64(1 + l1Clusters)
        let (tableClusters, blockCount) = Qcow2Layout.refcountStructures(
            dataClusters: metadataStart, clusterSize: cs, refcountBits: 16, placedAfter: true)
        let tableOffset = metadataStart * UInt64(cs)
        let blocksOffset = tableOffset + UInt64(tableClusters * cs)
        let total = metadataStart + UInt64(tableClusters + blockCount)

        var header = layout.header(compressionType: compressionType)
        header.l1TableOffset = UInt64(cs)
        header.refcountTableOffset = tableOffset
        header.refcountTableClusters = UInt32(tableClusters)
        header.backingFile = backingFile
        header.backingFormat = backingFormat?.rawValue
        try file.truncate(to: total * UInt64(cs))
        try file.write(try header.encode(clusterSize: cs), at: 0)
        try Qcow2Layout.writeRefcounts(to: file, clusterSize: cs, tableOffset: tableOffset,
                                       tableClusters: tableClusters, blocksOffset: blocksOffset,
                                       blockCount: blockCount, value: { _ in 1 }, clusterCount: total)
    }
}

/// Geometry shared by `create` and the streaming writer.
struct Qcow2Layout {
    let virtualSize: UInt64
    let clusterSize: Int
    let clusterBits: UInt32
    let extendedL2: Bool
    let l1Entries: Int

    init(virtualSize: UInt64, clusterSize: Int, extendedL2: Bool) throws {
        guard clusterSize >= 512, clusterSize <= 2 << 20, clusterSize & (clusterSize - 1) == 0 else {
            throw WispError.invalidArgument("cluster size \(clusterSize) must be a power of two from 512 to 2M")
        }
        if extendedL2 && clusterSize < 16384 {
            throw WispError.invalidArgument("extended L2 entries need a cluster size of at least 16K")
        }
        guard virtualSize <= Qcow2Header.maxVirtualSize else {
            throw WispError.invalidArgument("virtual size \(virtualSize) is larger than qcow2 supports")
        }
        self.virtualSize = virtualSize
        self.clusterSize = clusterSize
        clusterBits = UInt32(clusterSize.trailingZeroBitCount)
        self.extendedL2 = extendedL2
        let needed = Qcow2Header.l1EntriesNeeded(size: virtualSize, clusterBits: clusterBits,
                                                 l2EntrySize: extendedL2 ? 16 : 8)
        guard needed * 8 <= Qcow2Header.maxL1Bytes else {
            throw WispError.invalidArgument("a \(virtualSize)-byte image with \(clusterSize)-byte clusters needs an L1 table over 32 MiB; use larger clusters")
        }
        l1Entries = Int(needed)
    }

    var l1Clusters: Int { max(1, (l1Entries * 8 + clusterSize - 1) / clusterSize) }

    func header(compressionType: Qcow2CompressionType) -> Qcow2Header {
        var h = Qcow2Header(version: 3, backingFileOffset: 0, backingFileSize: 0, clusterBits: clusterBits,
                            size: virtualSize, cryptMethod: 0, l1Size: UInt32(l1Entries), l1TableOffset: 0,
                            refcountTableOffset: 0, refcountTableClusters: 0, snapshotCount: 0, snapshotsOffset: 0)
        h.refcountOrder = 4
        h.headerLength = 112
        h.compressionType = compressionType
        if compressionType != .deflate { h.incompatibleFeatures |= Qcow2Header.compressionTypeBit }
        if extendedL2 { h.incompatibleFeatures |= Qcow2Header.extendedL2Bit }
        return h
    }

    /// How many refcount table clusters and blocks cover `dataClusters` clusters plus
    /// themselves (when placed after them).
    static func refcountStructures(dataClusters: UInt64, clusterSize: Int, refcountBits: Int,
                                   placedAfter: Bool) -> (tableClusters: Int, blocks: Int) {
        let perBlock = UInt64(clusterSize * 8 / refcountBits)
        var table = 1
        var blocks = 1
        while true {
            let total = dataClusters + UInt64(table + blocks)
            let newBlocks = Int((total + perBlock - 1) / perBlock)
            let newTable = max(1, (newBlocks * 8 + clusterSize - 1) / clusterSize)
            if newBlocks == blocks && newTable == table { return (table, blocks) }
            blocks = newBlocks
            table = newTable
        }
    }

    /// Writes the refcount table and blocks: cluster `i` (for i < clusterCount) gets `value(i)`.
    static func writeRefcounts(to file: PosixFile, clusterSize: Int, tableOffset: UInt64, tableClusters: Int,
                               blocksOffset: UInt64, blockCount: Int, value: (UInt64) -> UInt16,
                               clusterCount: UInt64) throws {
        let perBlock = clusterSize / 2
        var table = [UInt8](repeating: 0, count: tableClusters * clusterSize)
        for b in 0..<blockCount {
            let offset = blocksOffset + UInt64(b * clusterSize)
            table.putBE64(offset, at: b * 8)
            var block = [UInt8](repeating: 0, count: clusterSize)
            let first = UInt64(b * perBlock)
            if first < clusterCount {
                for i in 0..<min(perBlock, Int(clusterCount - first)) {
                    block.putBE16(value(first + UInt64(i)), at: i * 2)
                }
            }
            try file.write(block, at: offset)
        }
        try file.write(table, at: tableOffset)
    }
}
