import WispCore

/// Writes a new qcow2 image front to back, for convert: clusters arrive in ascending
/// virtual order; data (compressed or not) is appended, each L2 table is written as soon
/// as the writer moves past the range it maps, and the L1 table, refcounts and header are
/// written at the end. Memory: one L2 table plus a refcount per host cluster.
///
/// Layout: header (cluster 0), L1 table, the L2 tables the plan says will be needed, the
/// refcount table and blocks sized for the most data the plan allows, then data. Metadata
/// reserved up front lets compressed data pack without alignment gaps and the file end
/// right after the last compressed byte, as qemu-img's does. An L2 table the plan did not
/// foresee is appended in line.
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
    /// Consecutive output bytes not yet written: data is appended here and written in
    /// large pieces (qemu-img does the same), with writeback started as we go.
    private var pending: [UInt8] = []
    private var pendingOffset: UInt64 = 0
    private var writebackStart: UInt64 = 0
    static let pendingLimit = 4 << 20

    /// Reserved host offset of the L2 table for each L1 index expected to hold data.
    private var reservedL2: [Int: UInt64] = [:]

    private var refcountTableOffset: UInt64 = 0
    private var refcountTableClusters = 0
    private var refcountBlocksOffset: UInt64 = 0
    private var refcountBlockCount = 0

    /// `maxDataClusters` bounds the data clusters convert can write (all planned clusters).
    init(file: PosixFile, layout: Qcow2Layout, compressionType: Qcow2CompressionType, expectedL1Indices: [Int] = [],
         maxDataClusters: UInt64 = 0) {
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
        for index in expectedL1Indices where index >= 0 && index < layout.l1Entries && reservedL2[index] == nil {
            reservedL2[index] = hostEnd
            hostEnd += UInt64(clusterSize)
            refcounts.append(0)
        }
        let bound = UInt64(refcounts.count) + maxDataClusters + UInt64(layout.l1Entries) + 16
        let (tableClusters, blocks) = Qcow2Layout.refcountStructures(
            dataClusters: bound, clusterSize: clusterSize, refcountBits: 16, placedAfter: true)
        refcountTableOffset = hostEnd
        refcountTableClusters = tableClusters
        refcountBlocksOffset = hostEnd + UInt64(tableClusters * clusterSize)
        refcountBlockCount = blocks
        hostEnd += UInt64((tableClusters + blocks) * clusterSize)
        refcounts += [UInt16](repeating: 1, count: tableClusters + blocks)
    }

    /// Queues `bytes` for `offset`, which must be where the pending run ends or a new run.
    private func put(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        if !pending.isEmpty && pendingOffset + UInt64(pending.count) != offset { try flushPending() }
        if pending.isEmpty { pendingOffset = offset }
        pending.append(contentsOf: bytes)
        if pending.count >= Self.pendingLimit { try flushPending() }
    }

    private func flushPending() throws {
        guard !pending.isEmpty else { return }
        try file.write(pending, at: pendingOffset)
        let end = pendingOffset + UInt64(pending.count)
        pending.removeAll(keepingCapacity: true)
        if end > writebackStart + (32 << 20) {
            file.startWriteback(offset: writebackStart, length: end - writebackStart)
            writebackStart = end
        }
    }

    private func alignToCluster() {
        let cs = UInt64(clusterSize)
        hostEnd = (hostEnd + cs - 1) / cs * cs
    }

    private func reference(clusterIndex: UInt64) throws {
        let i = Int(clusterIndex)
        if i >= refcounts.count { refcounts += [UInt16](repeating: 0, count: i + 1 - refcounts.count) }
        guard refcounts[i] < UInt16.max else {
            throw WispError(.failed, "\(file.displayPath): refcount of host cluster \(i) overflows")
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
        var bytes = [UInt8](repeating: 0, count: clusterSize)
        for (i, e) in currentL2.enumerated() where e != 0 { bytes.putBE64(e, at: i * 8) }
        let offset: UInt64
        if let reserved = reservedL2.removeValue(forKey: currentL1Index) {
            offset = reserved
            try file.write(bytes, at: offset)
        } else {
            alignToCluster()
            offset = hostEnd
            try bytes.withUnsafeBytes { try put($0, at: offset) }
            hostEnd += UInt64(clusterSize)
        }
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
            try put(data, at: host)
        } else {
            // The image's last cluster may be partial; keep the file cluster-granular.
            var padded = [UInt8](repeating: 0, count: clusterSize)
            padded.withUnsafeMutableBytes { $0.copyMemory(from: data) }
            try padded.withUnsafeBytes { try put($0, at: host) }
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
        try compressed.withUnsafeBytes { try put($0, at: host) }
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
        try flushPending()
        // Reserved tables whose range turned out to be all zeros: empty but valid L2 tables.
        for (index, offset) in reservedL2 {
            try file.write([UInt8](repeating: 0, count: clusterSize), at: offset)
            try reference(clusterIndex: offset >> UInt64(clusterBits))
            l1[index] = offset | Qcow2Image.copiedFlag
        }
        reservedL2.removeAll()
        let cs = UInt64(clusterSize)
        // L1 table (cluster 1 onwards).
        var l1Bytes = [UInt8](repeating: 0, count: layout.l1Clusters * clusterSize)
        for (i, e) in l1.enumerated() where e != 0 { l1Bytes.putBE64(e, at: i * 8) }
        try file.write(l1Bytes, at: cs)
        // Refcounts, in the structures reserved at the start.
        let usedClusters = (hostEnd + cs - 1) / cs
        let coverage = UInt64(refcountBlockCount * (clusterSize / 2))
        guard usedClusters <= coverage else {
            throw WispError(.failed, "\(file.displayPath): internal error: \(usedClusters) clusters outgrew the \(coverage) reserved refcounts")
        }
        if refcounts.count < Int(usedClusters) {
            refcounts += [UInt16](repeating: 0, count: Int(usedClusters) - refcounts.count)
        }
        let counts = refcounts
        try Qcow2Layout.writeRefcounts(to: file, clusterSize: clusterSize, tableOffset: refcountTableOffset,
                                       tableClusters: refcountTableClusters, blocksOffset: refcountBlocksOffset,
                                       blockCount: refcountBlockCount, value: { counts[Int($0)] },
                                       clusterCount: usedClusters)
        var header = layout.header(compressionType: compressionType)
        header.l1TableOffset = cs
        header.refcountTableOffset = refcountTableOffset
        header.refcountTableClusters = UInt32(refcountTableClusters)
        try file.truncate(to: hostEnd)
        try file.write(try header.encode(clusterSize: clusterSize), at: 0)
    }
}
