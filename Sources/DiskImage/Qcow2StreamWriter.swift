import WispCore

/// Writes a new qcow2 image front to back, for convert: clusters arrive in ascending
/// virtual order; data (compressed or not) is appended, each L2 table is written as soon
/// as the writer moves past the range it maps, and the L1 table, refcounts and header are
/// written at the end. Memory: one L2 table plus a refcount per host cluster.
///
/// Layout: header (cluster 0), L1 table, then data interleaved with L2 tables, then the
/// refcount table and blocks.
final class Qcow2StreamWriter {
    let file: PosixFile
    let layout: Qcow2Layout
    let compressionType: Qcow2CompressionType
    let clusterSize: Int
    let clusterBits: Int
    let l2Entries: Int
    private var l1: [UInt64]
    private var currentL1Index = -1
    private var currentL2: [UInt64]
    /// Next free byte (compressed data is packed byte by byte, as QEMU does).
    private var hostEnd: UInt64
    /// Refcount per host cluster.
    private var refcounts: [UInt16]
    private var dataClustersWritten = 0

    init(file: PosixFile, layout: Qcow2Layout, compressionType: Qcow2CompressionType) {
        self.file = file
        self.layout = layout
        self.compressionType = compressionType
        clusterSize = layout.clusterSize
        clusterBits = Int(layout.clusterBits)
        l2Entries = layout.clusterSize / 8
        l1 = [UInt64](repeating: 0, count: layout.l1Entries)
        currentL2 = [UInt64](repeating: 0, count: l2Entries)
        let metadataClusters = 1 + layout.l1Clusters
        hostEnd = UInt64(metadataClusters * layout.clusterSize)
        refcounts = [UInt16](repeating: 1, count: metadataClusters)
    }

    private func alignToCluster() {
        let cs = UInt64(clusterSize)
        hostEnd = (hostEnd + cs - 1) / cs * cs
    }

    private func reference(clusterIndex: UInt64) throws {
        let i = Int(clusterIndex)
        if i >= refcounts.count { refcounts += [UInt16](repeating: 0, count: i + 1 - refcounts.count) }
        guard refcounts[i] < UInt16.max else {
            throw WispError(.failed, "\(file.path): refcount of host cluster \(i) overflows")
        }
        refcounts[i] += 1
    }

    private func switchL2(to l1Index: Int) throws {
        guard l1Index != currentL1Index else { return }
        try flushL2()
        currentL1Index = l1Index
    }

    private func flushL2() throws {
        guard currentL1Index >= 0 else { return }
        alignToCluster()
        let offset = hostEnd
        var bytes = [UInt8](repeating: 0, count: clusterSize)
        for (i, e) in currentL2.enumerated() where e != 0 { bytes.putBE64(e, at: i * 8) }
        try file.write(bytes, at: offset)
        hostEnd += UInt64(clusterSize)
        try reference(clusterIndex: offset >> UInt64(clusterBits))
        l1[currentL1Index] = offset | Qcow2Image.copiedFlag
        for i in currentL2.indices { currentL2[i] = 0 }
        currentL1Index = -1
    }

    /// Stores an uncompressed cluster for virtual cluster `cluster`.
    func writeCluster(_ cluster: UInt64, data: UnsafeRawBufferPointer) throws {
        try switchL2(to: Int(cluster / UInt64(l2Entries)))
        alignToCluster()
        let host = hostEnd
        if data.count == clusterSize {
            try file.write(data, at: host)
        } else {
            // The image's last cluster may be partial; keep the file cluster-granular.
            var padded = [UInt8](repeating: 0, count: clusterSize)
            padded.withUnsafeMutableBytes { $0.copyMemory(from: data) }
            try file.write(padded, at: host)
        }
        hostEnd += UInt64(clusterSize)
        try reference(clusterIndex: host >> UInt64(clusterBits))
        currentL2[Int(cluster % UInt64(l2Entries))] = host | Qcow2Image.copiedFlag
        dataClustersWritten += 1
    }

    /// Stores a compressed cluster (`compressed` shorter than a cluster).
    func writeCompressedCluster(_ cluster: UInt64, compressed: [UInt8]) throws {
        try switchL2(to: Int(cluster / UInt64(l2Entries)))
        let host = hostEnd
        try file.write(compressed, at: host)
        hostEnd += UInt64(compressed.count)
        let sectorStart = host & ~UInt64(511)
        let sectors = (host + UInt64(compressed.count) - sectorStart + 511) / 512
        let first = sectorStart >> UInt64(clusterBits)
        let last = (sectorStart + sectors * 512 - 1) >> UInt64(clusterBits)
        for c in first...last { try reference(clusterIndex: c) }
        let shift = UInt64(62 - (clusterBits - 8))
        currentL2[Int(cluster % UInt64(l2Entries))] = Qcow2Image.compressedFlag | ((sectors - 1) << shift) | host
        dataClustersWritten += 1
    }

    /// Writes the remaining metadata and the header; the caller syncs and commits.
    func finish() throws {
        try flushL2()
        alignToCluster()
        let cs = UInt64(clusterSize)
        // L1 table (cluster 1 onwards).
        var l1Bytes = [UInt8](repeating: 0, count: layout.l1Clusters * clusterSize)
        for (i, e) in l1.enumerated() where e != 0 { l1Bytes.putBE64(e, at: i * 8) }
        try file.write(l1Bytes, at: cs)
        // Refcount structures at the end.
        let dataClusters = hostEnd / cs
        if refcounts.count < Int(dataClusters) {
            refcounts += [UInt16](repeating: 0, count: Int(dataClusters) - refcounts.count)
        }
        let (tableClusters, blockCount) = Qcow2Layout.refcountStructures(
            dataClusters: dataClusters, clusterSize: clusterSize, refcountBits: 16, placedAfter: true)
        let tableOffset = hostEnd
        let blocksOffset = tableOffset + UInt64(tableClusters) * cs
        let total = dataClusters + UInt64(tableClusters + blockCount)
        refcounts += [UInt16](repeating: 1, count: tableClusters + blockCount)
        let counts = refcounts
        try Qcow2Layout.writeRefcounts(to: file, clusterSize: clusterSize, tableOffset: tableOffset,
                                       tableClusters: tableClusters, blocksOffset: blocksOffset,
                                       blockCount: blockCount, value: { counts[Int($0)] }, clusterCount: total)
        var header = layout.header(compressionType: compressionType)
        header.l1TableOffset = cs
        header.refcountTableOffset = tableOffset
        header.refcountTableClusters = UInt32(tableClusters)
        try file.truncate(to: total * cs)
        try file.write(try header.encode(clusterSize: clusterSize), at: 0)
    }
}
