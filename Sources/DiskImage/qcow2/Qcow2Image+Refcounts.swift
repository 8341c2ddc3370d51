import WispCore

/// A cached refcount block (a reference so updates do not copy it).
final class Qcow2RefcountBlock: @unchecked Sendable {
    var bytes: [UInt8]
    init(bytes: [UInt8]) { self.bytes = bytes }
}

/// Refcount bookkeeping for writes. Every cluster we hand out gets its refcount raised
/// before anything points at it, and new refcount blocks (and a grown refcount table)
/// account for themselves, so the image is consistent after every call.
/// All of these run with `lock` held.
extension Qcow2Image {
    var refcountEntriesPerBlock: Int { clusterSize * 8 / header.refcountBits }
    var maxRefcount: UInt64 {
        header.refcountBits == 64 ? UInt64.max : (UInt64(1) << UInt64(header.refcountBits)) - 1
    }

    static func refcountValue(_ bytes: [UInt8], index: Int, bits: Int) -> UInt64 {
        if bits >= 8 {
            let width = bits / 8
            var v: UInt64 = 0
            for i in 0..<width { v = v << 8 | UInt64(bytes[index * width + i]) }
            return v
        }
        let perByte = 8 / bits
        let byte = bytes[index / perByte]
        return UInt64(byte >> UInt8((index % perByte) * bits)) & ((1 << UInt64(bits)) - 1)
    }

    /// Stores `value`; returns the byte range touched.
    static func setRefcount(_ bytes: inout [UInt8], index: Int, bits: Int, value: UInt64) -> Range<Int> {
        if bits >= 8 {
            let width = bits / 8
            for i in 0..<width {
                bytes[index * width + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * (width - 1 - i)))
            }
            return (index * width)..<(index * width + width)
        }
        let perByte = 8 / bits
        let shift = UInt8((index % perByte) * bits)
        let mask = UInt8(truncatingIfNeeded: (1 << bits) - 1) << shift
        let b = index / perByte
        bytes[b] = (bytes[b] & ~mask) | (UInt8(truncatingIfNeeded: value) << shift & mask)
        return b..<(b + 1)
    }

    func refcountBlock(at offset: UInt64, tableIndex: Int) throws -> Qcow2RefcountBlock {
        if let cached = refcountBlockCache.get(offset) { return cached }
        guard offset % UInt64(clusterSize) == 0 else {
            throw WispError.corrupt(name, "refcount table entry \(tableIndex)",
                                    at: header.refcountTableOffset + UInt64(tableIndex) * 8,
                                    "refcount block offset \(offset) is not cluster aligned")
        }
        let bytes = try file.readExactly(at: offset, count: clusterSize)
        let block = Qcow2RefcountBlock(bytes: bytes)
        refcountBlockCache.put(offset, block)
        return block
    }

    /// The refcount of host cluster `index` (0 when no block covers it).
    func refcount(ofCluster index: UInt64) throws -> UInt64 {
        let perBlock = UInt64(refcountEntriesPerBlock)
        let tableIndex = index / perBlock
        guard tableIndex < UInt64(refcountTable.count) else { return 0 }
        let blockOffset = refcountTable[Int(tableIndex)] & Self.offsetMask
        guard blockOffset != 0 else { return 0 }
        let block = try refcountBlock(at: blockOffset, tableIndex: Int(tableIndex))
        return Self.refcountValue(block.bytes, index: Int(index % perBlock), bits: header.refcountBits)
    }

    /// Adds `delta` to the refcount of host cluster `index`, creating refcount blocks and
    /// growing the refcount table as needed.
    func changeRefcount(ofCluster index: UInt64, by delta: Int64) throws {
        let perBlock = UInt64(refcountEntriesPerBlock)
        let tableIndex = index / perBlock
        if tableIndex >= UInt64(refcountTable.count) {
            try growRefcountTable(toCover: tableIndex)
        }
        var blockOffset = refcountTable[Int(tableIndex)] & Self.offsetMask
        if blockOffset == 0 {
            blockOffset = fileEnd
            fileEnd += UInt64(clusterSize)
            let zeros = [UInt8](repeating: 0, count: clusterSize)
            try file.write(zeros, at: blockOffset)
            refcountBlockCache.put(blockOffset, Qcow2RefcountBlock(bytes: zeros))
            refcountTable[Int(tableIndex)] = blockOffset
            var entry = [UInt8](repeating: 0, count: 8)
            entry.putBE64(blockOffset, at: 0)
            try file.write(entry, at: header.refcountTableOffset + tableIndex * 8)
            try changeRefcount(ofCluster: blockOffset >> UInt64(clusterBits), by: 1)
        }
        let block = try refcountBlock(at: blockOffset, tableIndex: Int(tableIndex))
        let slot = Int(index % perBlock)
        let old = Self.refcountValue(block.bytes, index: slot, bits: header.refcountBits)
        let new: UInt64
        if delta >= 0 {
            let (sum, overflow) = old.addingReportingOverflow(UInt64(delta))
            guard !overflow, sum <= maxRefcount else {
                throw WispError.corrupt(name, "refcount of cluster \(index)", "would exceed \(maxRefcount)")
            }
            new = sum
        } else {
            guard old >= UInt64(-delta) else {
                throw WispError.corrupt(name, "refcount of cluster \(index)", at: index << UInt64(clusterBits),
                                        "would drop below zero (it is \(old)): the refcounts are inconsistent")
            }
            new = old - UInt64(-delta)
        }
        let touched = Self.setRefcount(&block.bytes, index: slot, bits: header.refcountBits, value: new)
        try file.write(Array(block.bytes[touched]), at: blockOffset + UInt64(touched.lowerBound))
    }

    /// Moves the refcount table to the end of the file with room for `tableIndex`.
    func growRefcountTable(toCover tableIndex: UInt64) throws {
        let cs = UInt64(clusterSize)
        let oldOffset = header.refcountTableOffset
        let oldClusters = UInt64(header.refcountTableClusters)
        let wantedEntries = max(tableIndex + 1, UInt64(refcountTable.count) * 2) + 64
        let newClusters = (wantedEntries * 8 + cs - 1) / cs
        guard newClusters * cs <= Qcow2Header.maxRefcountTableBytes else {
            throw WispError.unsupported(name, "the refcount table would grow past \(Qcow2Header.maxRefcountTableBytes >> 20) MiB")
        }
        let newOffset = fileEnd
        fileEnd += newClusters * cs
        refcountTable += [UInt64](repeating: 0, count: Int(newClusters * cs / 8) - refcountTable.count)
        header.refcountTableOffset = newOffset
        header.refcountTableClusters = UInt32(newClusters)
        try writeRefcountTable()
        for i in 0..<newClusters {
            try changeRefcount(ofCluster: (newOffset >> UInt64(clusterBits)) + i, by: 1)
        }
        try writeRefcountTable()
        try file.sync()
        var fields = [UInt8](repeating: 0, count: 12)
        fields.putBE64(newOffset, at: 0)
        fields.putBE32(UInt32(newClusters), at: 8)
        try file.write(fields, at: 48)
        for i in 0..<oldClusters {
            try changeRefcount(ofCluster: (oldOffset >> UInt64(clusterBits)) + i, by: -1)
        }
    }

    func writeRefcountTable() throws {
        var bytes = [UInt8](repeating: 0, count: refcountTable.count * 8)
        for (i, e) in refcountTable.enumerated() { bytes.putBE64(e, at: i * 8) }
        try file.write(bytes, at: header.refcountTableOffset)
    }

    /// Hands out `count` contiguous clusters at the end of the file, refcounts set to 1.
    func allocateClusters(_ count: Int) throws -> UInt64 {
        let start = fileEnd
        fileEnd += UInt64(count) * UInt64(clusterSize)
        for i in 0..<UInt64(count) {
            try changeRefcount(ofCluster: (start >> UInt64(clusterBits)) + i, by: 1)
        }
        return start
    }

    /// Drops one reference from every host cluster in `[offset, offset+length)`.
    func releaseRange(offset: UInt64, length: UInt64) throws {
        guard length > 0 else { return }
        let first = offset >> UInt64(clusterBits)
        let last = (offset + length - 1) >> UInt64(clusterBits)
        for c in first...last { try changeRefcount(ofCluster: c, by: -1) }
    }
}
