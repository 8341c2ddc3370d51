import Foundation
import WispCore

/// What `wisp image check` found (Codable for --json).
public struct CheckReport: Codable, Sendable, Equatable {
    public var filename: String
    public var format: ImageFormat
    /// Clusters whose refcount is higher than the references to them (wasted space).
    public var leakedClusters: Int = 0
    /// Clusters whose refcount is lower than the references to them (data at risk).
    public var refcountErrors: Int = 0
    /// Structural problems: overlapping metadata, references outside the file, ...
    public var corruptions: [String] = []
    public var repairedClusters: Int = 0
    public var allocatedClusters: Int = 0
    public var totalClusters: UInt64 = 0
    public var imageEndOffset: UInt64 = 0
    public var dirty = false
    /// The corruptions listed so far, to list each once: bookkeeping, neither encoded nor
    /// compared.
    var listed = Listed()

    struct Listed: Sendable, Equatable {
        var sentences: Set<String> = []
        static func == (_: Listed, _: Listed) -> Bool { true }
    }

    enum CodingKeys: String, CodingKey {
        case filename, format, leakedClusters, refcountErrors, corruptions, repairedClusters, allocatedClusters,
             totalClusters, imageEndOffset, dirty
    }

    public var isClean: Bool { leakedClusters == 0 && refcountErrors == 0 && corruptions.isEmpty }

    public var text: String {
        var lines: [String] = []
        for c in corruptions.prefix(50) { lines.append("ERROR: \(c)") }
        if corruptions.count > 50 { lines.append("... and \(corruptions.count - 50) more errors") }
        if refcountErrors > 0 { lines.append("\(refcountErrors) clusters have a refcount lower than their references") }
        if leakedClusters > 0 { lines.append("\(leakedClusters) leaked clusters were found on the image (this wastes space, no data is at risk)") }
        if repairedClusters > 0 { lines.append("\(repairedClusters) refcounts were repaired") }
        if isClean { lines.append("No errors were found on the image.") }
        if format == .qcow2 {
            lines.append("\(allocatedClusters)/\(totalClusters) = \(totalClusters == 0 ? 0 : Double(allocatedClusters * 10000 / Int(max(totalClusters, 1))) / 100)% allocated")
            lines.append("Image end offset: \(imageEndOffset)")
        }
        return lines.joined(separator: "\n")
    }
}

/// Rebuilds a qcow2 image's refcounts from its L1/L2 tables and compares them with the
/// refcounts on disk, like `qemu-img check`. `--repair` rewrites the refcounts that differ
/// (leaks, and too-low counts where a refcount block exists) and clears the dirty bit.
public enum Qcow2Checker {
    static let maxClusters: UInt64 = 1 << 28

    /// The image's chain is resolved under `policy` first (as `qemu-img check` opens it),
    /// so a chain the policy refuses is an error, not a report. Other formats are checked
    /// by `ImageChecker` (this is the same entry point, kept for its callers).
    public static func check(path: String, repair: Bool = false,
                             policy: ExternalReferencePolicy = .confinedToImageDirectory) throws -> CheckReport {
        try ImageChecker.check(path: path, repair: repair, policy: policy)
    }

    /// Checks the qcow2 top of a resolved chain (resolved writable when `repair`).
    static func check(chain: BackingChain, path: String, repair: Bool) throws -> CheckReport {
        let file = try chain.openFile(of: chain.top)
        let device = try FileBlockDevice(file: file)
        let header = try Qcow2Header.parse(device, name: path)
        guard !header.hasExternalDataFile else {
            throw WispError.unsupported(path, "checking qcow2 images with an external data file is not supported")
        }
        guard header.snapshotCount == 0 else {
            throw WispError.unsupported(path, "checking qcow2 images with internal snapshots is not supported")
        }
        let cs = UInt64(header.clusterSize)
        let cb = UInt64(header.clusterBits)
        let fileSize = device.size
        let fileClusters = (fileSize + cs - 1) / cs
        guard fileClusters <= maxClusters else {
            throw WispError.unsupported(path, "the image has \(fileClusters) clusters, more than check handles")
        }
        var report = CheckReport(filename: path, format: .qcow2)
        report.dirty = header.isDirty
        report.imageEndOffset = fileSize
        report.totalClusters = (header.size + cs - 1) / cs
        var computed = [UInt32](repeating: 0, count: Int(fileClusters))
        /// Metadata owners, to name both sides of an overlap.
        var owner: [UInt64: String] = [:]

        func reference(_ offset: UInt64, _ length: UInt64, _ what: String, metadata: Bool) {
            guard length > 0 else { return }
            let (end, overflow) = offset.addingReportingOverflow(length)
            guard !overflow, end <= fileClusters * cs else {
                report.corruptions.append("\(what) at offset \(offset) lies outside the file (\(fileSize) bytes)")
                return
            }
            for c in (offset >> cb)...((end - 1) >> cb) {
                if metadata {
                    if let other = owner[c] {
                        report.corruptions.append("\(what) at offset \(c << cb) overlaps \(other)")
                    } else if computed[Int(c)] > 0 {
                        report.corruptions.append("\(what) at offset \(c << cb) overlaps a data cluster")
                    }
                    owner[c] = what
                } else if let other = owner[c] {
                    report.corruptions.append("\(what) at offset \(c << cb) overlaps \(other)")
                }
                computed[Int(c)] &+= 1
            }
        }

        reference(0, cs, "the header", metadata: true)
        reference(header.l1TableOffset, UInt64(header.l1Size) * 8, "the L1 table", metadata: true)
        reference(header.refcountTableOffset, UInt64(header.refcountTableClusters) * cs, "the refcount table", metadata: true)
        let refcountTable = Qcow2Image.decodeBE64(
            try file.readExactly(at: header.refcountTableOffset, count: Int(header.refcountTableClusters) * Int(cs)))
        var blocks: [Int: UInt64] = [:]
        for (i, e) in refcountTable.enumerated() where e != 0 {
            let offset = e & Qcow2Image.offsetMask
            guard offset % cs == 0, offset + cs <= fileClusters * cs, offset != 0 else {
                report.corruptions.append("refcount block \(i) at offset \(offset) is unaligned or outside the file")
                continue
            }
            reference(offset, cs, "refcount block \(i)", metadata: true)
            blocks[i] = offset
        }
        let l1 = Qcow2Image.decodeBE64(try file.readExactly(at: header.l1TableOffset, count: Int(header.l1Size) * 8))
        let entrySize = header.l2EntrySize
        let shift = UInt64(62 - (Int(cb) - 8))
        var compressedHosts = Set<UInt64>()
        for (l1Index, l1e) in l1.enumerated() {
            let l2Offset = l1e & Qcow2Image.offsetMask
            guard l2Offset != 0 else { continue }
            guard l2Offset % cs == 0, l2Offset + cs <= fileClusters * cs else {
                report.corruptions.append("L2 table \(l1Index) at offset \(l2Offset) is unaligned or outside the file")
                continue
            }
            reference(l2Offset, cs, "L2 table \(l1Index)", metadata: true)
            var bytes = [UInt8](repeating: 0, count: Int(cs))
            try bytes.withUnsafeMutableBytes { try file.read(into: $0, at: l2Offset) }
            let entries = Qcow2Image.decodeBE64(bytes)
            let count = Int(cs) / entrySize
            for i in 0..<count {
                let entry = entries[i * entrySize / 8]
                let cluster = UInt64(l1Index) * UInt64(count) + UInt64(i)
                if entry & Qcow2Image.compressedFlag != 0 {
                    let host = entry & ((1 << shift) - 1)
                    let sectors = ((entry >> shift) & ((1 << (cb - 8)) - 1)) + 1
                    let start = host & ~UInt64(511)
                    if sectors * 512 <= 4 * cs {
                        for c in (start >> cb)...((start + sectors * 512 - 1) >> cb) { compressedHosts.insert(c) }
                    }
                    reference(host & ~UInt64(511), sectors * 512, "compressed cluster \(cluster)", metadata: false)
                    report.allocatedClusters += 1
                } else {
                    let host = entry & Qcow2Image.offsetMask
                    if host != 0 {
                        guard host % cs == 0 else {
                            report.corruptions.append("cluster \(cluster): data offset \(host) is not cluster aligned")
                            continue
                        }
                        reference(host, cs, "data cluster \(cluster)", metadata: false)
                        report.allocatedClusters += 1
                    } else if header.hasExtendedL2 || entry & 1 != 0 {
                        if entry & 1 != 0 || entries[i * 2 + 1] >> 32 != 0 { report.allocatedClusters += 1 }
                    }
                }
            }
        }
        // A plain data cluster referenced twice (no snapshots here) is corruption.
        for (index, count) in computed.enumerated() where count > 1 && owner[UInt64(index)] == nil {
            if !compressedHosts.contains(UInt64(index)) {
                report.corruptions.append("host cluster at offset \(UInt64(index) << cb) is referenced \(count) times")
            }
        }

        // Compare with the refcounts on disk.
        let bits = header.refcountBits
        let perBlock = Int(cs) * 8 / bits
        var blockCache: [Int: [UInt8]] = [:]
        var dirtyBlocks: Set<Int> = []
        let maxValue: UInt64 = bits == 64 ? .max : (1 << UInt64(bits)) - 1
        for c in 0..<fileClusters {
            let t = Int(c / UInt64(perBlock))
            let want = UInt64(computed[Int(c)])
            var onDisk: UInt64 = 0
            if let blockOffset = blocks[t] {
                if blockCache[t] == nil { blockCache[t] = try file.readExactly(at: blockOffset, count: Int(cs)) }
                onDisk = Qcow2Image.refcountValue(blockCache[t] ?? [], index: Int(c % UInt64(perBlock)), bits: bits)
            }
            guard onDisk != want else { continue }
            if onDisk > want { report.leakedClusters += 1 } else { report.refcountErrors += 1 }
            if repair, blocks[t] != nil, var block = blockCache[t] {
                _ = Qcow2Image.setRefcount(&block, index: Int(c % UInt64(perBlock)), bits: bits, value: min(want, maxValue))
                blockCache[t] = block
                dirtyBlocks.insert(t)
                report.repairedClusters += 1
            }
        }
        // Past the end of the file nothing can be referenced: every non-zero refcount there
        // is a leak. Only the entries of blocks the table names are visited, and a block at
        // an offset seen before is counted from memory, so a tiny image whose table names
        // the same block at every index (found by the qcow2 fuzz target: check walked
        // (index + 1) × entries-per-block clusters, 2^28 and more) costs one pass over the
        // blocks it holds. Shared blocks are overlapping metadata: repair refuses those first.
        if repair, let first = report.corruptions.first {
            throw WispError(.failed, "\(path): the image has structural corruption (\(first)); only refcounts can be repaired")
        }
        var pastEndLeaks: [UInt64: Int] = [:]
        for (t, blockOffset) in blocks.sorted(by: { $0.key < $1.key }) {
            let (first, overflow) = UInt64(t).multipliedReportingOverflow(by: UInt64(perBlock))
            guard !overflow, first + UInt64(perBlock) > fileClusters else { continue }
            if !repair, first >= fileClusters, let known = pastEndLeaks[blockOffset] {
                report.leakedClusters += known
                continue
            }
            var block = try blockCache[t] ?? file.readExactly(at: blockOffset, count: Int(cs))
            var leaks = 0
            for index in Int(first >= fileClusters ? 0 : fileClusters - first)..<perBlock
            where Qcow2Image.refcountValue(block, index: index, bits: bits) != 0 {
                leaks += 1
                if repair {
                    _ = Qcow2Image.setRefcount(&block, index: index, bits: bits, value: 0)
                    dirtyBlocks.insert(t)
                    report.repairedClusters += 1
                }
            }
            report.leakedClusters += leaks
            if first >= fileClusters { pastEndLeaks[blockOffset] = leaks }
            if repair { blockCache[t] = block }
        }
        if repair {
            guard report.corruptions.isEmpty else {
                throw WispError(.failed, "\(path): the image has structural corruption (\(report.corruptions[0])); only refcounts can be repaired")
            }
            for t in dirtyBlocks {
                if let offset = blocks[t], let block = blockCache[t] { try file.write(block, at: offset) }
            }
            if header.isDirty && report.refcountErrors == report.repairedClusters - report.leakedClusters {
                var flags = [UInt8](repeating: 0, count: 8)
                flags.putBE64(header.incompatibleFeatures & ~Qcow2Header.dirtyBit, at: 0)
                try file.write(flags, at: 72)
            }
            try file.sync()
        }
        return report
    }
}
