import WispCore

/// `wisp image check` for VMDK, extent by extent:
///
/// - hosted sparse extents (monolithicSparse, streamOptimized, the files of split sparse
///   images): the grain directory and the redundant grain directory inside the file,
///   every grain table they point at inside the file, every grain table entry's grain
///   inside the file (the last grain of a file may be cut short, as qemu writes them; a
///   compressed grain's marker must name its own LBA and a size that fits), and no grain
///   sharing bytes with another grain or with the header, descriptor, directories, grain
///   tables or stream footer. `qemu-img check` only asks that each grain start inside
///   the file.
/// - flat extents: the file holds the whole extent.
///
/// Grain tables that overlap other metadata are reported and not read further, so a
/// directory pointing many times at the same bytes costs nothing; what is read is bounded
/// by the file's size.
enum VmdkChecker {
    static func check(chain: BackingChain, path: String) throws -> CheckReport {
        let top = chain.top
        guard let layout = top.vmdk else {
            throw WispError(.failed, "\(top.name): the VMDK descriptor was not checked")
        }
        var report = CheckReport(filename: path, format: .vmdk)
        let own = NamedDevice(try FileBlockDevice(file: try chain.openFile(of: top)), name: top.name)
        report.imageEndOffset = own.size
        let files = try layout.openExtentFiles(own: own)
        for (i, extent) in layout.descriptor.extents.enumerated() {
            let label = "VMDK extent \(i + 1)"
            let file = files[i]
            do {
                switch extent.type {
                case .zero:
                    continue
                case .flat, .vmfs:
                    guard let file else { throw WispError.corrupt(top.name, label, "names no file") }
                    checkFlat(extent, label: label, file: file, into: &report)
                case .sparse, .vmfsSparse:
                    guard let file else { throw WispError.corrupt(top.name, label, "names no file") }
                    try checkSparse(extent, label: label, file: file, prefix: layout.isMonolithicSparse ? "" : "\(file.name): ",
                                    into: &report)
                default:
                    throw WispError.unsupported(top.name, "\(label): checking \(extent.type.rawValue) extents is not supported")
                }
            } catch let error as WispError where error.kind == .corrupt {
                report.addCorruption(error, file: top.name)
            }
        }
        return report
    }

    static func checkFlat(_ extent: VmdkDescriptor.Extent, label: String, file: any BlockDevice,
                          into report: inout CheckReport) {
        let (offset, o1) = extent.offsetSectors.multipliedReportingOverflow(by: 512)
        let (length, o2) = extent.sectors.multipliedReportingOverflow(by: 512)
        let end = o1 || o2 ? nil : FileRegions.end(offset, length)
        guard let end, end <= file.size else {
            report.addCorruption("\(label) (\(extent.type.rawValue) \"\(extent.fileName ?? "")\"): \(extent.sectors) sectors at sector \(extent.offsetSectors) reach past the end of \(file.name) (\(file.size) bytes)")
            return
        }
    }

    static func checkSparse(_ extent: VmdkDescriptor.Extent, label: String, file: any BlockDevice, prefix: String,
                            into report: inout CheckReport) throws {
        let size = file.size
        let sparse = try VmdkSparseExtent(file: file, name: file.name)
        let h = sparse.header
        let (length, overflow) = extent.sectors.multipliedReportingOverflow(by: 512)
        if overflow || sparse.capacityBytes < length {
            report.addCorruption("\(label): the descriptor says \(extent.sectors) sectors but \(file.name) holds \(h.capacity)")
        }
        var regions = FileRegions(name: file.name)
        func metadata(_ what: String, _ offset: UInt64, _ length: UInt64) throws -> Int? {
            guard let end = FileRegions.end(offset, length), end <= size else {
                report.addCorruption("\(prefix)\(what) at offset \(offset) (\(length) bytes) reaches past the end of the file (\(size) bytes)")
                return nil
            }
            return try regions.addMetadata(what, start: offset, end: end)
        }
        _ = try metadata("the VMDK header", 0, 512)
        // A stream (grain directory at the end): the footer and end-of-stream marker.
        let first = try VmdkSparseHeader.parse(try file.read(at: 0, count: 512), name: file.name, fileSize: size)
        if first.gdOffset == VmdkSparseHeader.gdAtEnd {
            _ = try metadata("the VMDK footer and end-of-stream marker", size - 1024, 1024)
        }
        if h.descriptorSectors > 0 {
            // The header parse checked the descriptor starts inside the file; a short last
            // sector is fine (the reader reads what is there).
            let start = h.descriptorOffset * 512
            let end = min(start + h.descriptorSectors * 512, size)
            try regions.addMetadata("the VMDK embedded descriptor", start: start, end: end)
        }
        let entries = h.gdEntries
        let gtBytes = UInt64(h.gtesPerGT) * 4
        // The extent's own parse checked the grain directory lies in the file.
        _ = try metadata("the VMDK grain directory", h.gdOffset * 512, entries * 4)
        /// Metadata tag of each grain table read, by directory index.
        var tableTags: [Int: Int] = [:]
        func gdEntry(_ i: Int, redundant: Bool) -> String {
            let base = (redundant ? h.rgdOffset : h.gdOffset) * 512
            return "\(prefix)VMDK \(redundant ? "redundant " : "")grain directory entry \(i) (at offset \(base + UInt64(i) * 4))"
        }
        for (i, sector) in sparse.directory.enumerated() where sector != 0 {
            let start = UInt64(sector) * 512
            guard let end = FileRegions.end(start, gtBytes), end <= size else {
                report.addCorruption("\(gdEntry(i, redundant: false)): the grain table at sector \(sector) reaches past the end of the file (\(size) bytes)")
                continue
            }
            tableTags[i] = try regions.addMetadata("VMDK grain table \(i)", start: start, end: end)
        }
        // The redundant copies: only where they are, not what they say.
        if h.flags.contains(.redundantGrainTable), h.rgdOffset != 0, h.rgdOffset != h.gdOffset {
            let (rgdStart, o1) = h.rgdOffset.multipliedReportingOverflow(by: 512)
            if !o1, let _ = try metadata("the VMDK redundant grain directory", rgdStart, entries * 4) {
                let rgd = VmdkSparseExtent.decode32(try file.read(at: rgdStart, count: Int(entries * 4)))
                for (i, sector) in rgd.enumerated() where sector != 0 {
                    let start = UInt64(sector) * 512
                    guard let end = FileRegions.end(start, gtBytes), end <= size else {
                        report.addCorruption("\(gdEntry(i, redundant: true)): the redundant grain table at sector \(sector) reaches past the end of the file (\(size) bytes)")
                        continue
                    }
                    try regions.addMetadata("VMDK redundant grain table \(i)", start: start, end: end)
                }
            } else if o1 {
                report.addCorruption("\(prefix)the VMDK header's redundant grain directory sector \(h.rgdOffset) is outside the file")
            }
        }
        // Overlapping metadata is reported now; grain tables among it are not read.
        var unreadable = Set<Int>()
        regions.forEachOverlap { a, b in
            unreadable.insert(a.tag)
            unreadable.insert(b.tag)
        }
        regions.reportOverlaps(into: &report, prefix: prefix) { _ in "" }

        let per = UInt64(h.gtesPerGT)
        let grains = (h.capacity + h.grainSectors - 1) / h.grainSectors
        report.totalClusters += grains
        func entryName(_ grain: Int) -> String {
            let t = UInt64(grain) / per, j = UInt64(grain) % per
            let at = UInt64(sparse.directory[Int(t)]) * 512 + j * 4
            return "\(prefix)VMDK grain table \(t) entry \(j) (at offset \(at))"
        }
        for (i, sector) in sparse.directory.enumerated() where sector != 0 {
            guard let tag = tableTags[i], !unreadable.contains(tag) else { continue }
            let first = UInt64(i) * per
            guard first < grains else { break }
            let table = VmdkSparseExtent.decode32(try file.read(at: UInt64(sector) * 512, count: Int(gtBytes)))
            for j in 0..<Int(min(per, grains - first)) {
                let entry = table[j]
                guard entry > 1 else { continue }  // 0: unallocated, 1: zero
                let grain = Int(first) + j
                report.allocatedClusters += 1
                let start = UInt64(entry) * 512
                guard start < size else {
                    report.addCorruption("\(entryName(grain)): the grain at sector \(entry) lies past the end of the file (\(size) bytes)")
                    continue
                }
                var end: UInt64
                if h.isCompressed {
                    end = start + 512
                    if h.hasMarkers {
                        guard let stored = marker(file, at: start, grain: UInt64(grain), header: h, entry: entryName(grain),
                                                  into: &report) else { continue }
                        end = (start + 12 + stored + 511) / 512 * 512
                    }
                } else {
                    end = start + h.grainSize
                }
                try regions.addData(grain, start: start, end: min(end, size))
            }
        }
        regions.reportOverlaps(into: &report, metadataPairs: false, prefix: prefix) {
            "the grain of \(entryName($0).dropFirst(prefix.count))"
        }
    }

    /// A compressed grain's marker: its LBA must be the grain's and its size must fit;
    /// returns the compressed size, nil after reporting.
    static func marker(_ file: any BlockDevice, at start: UInt64, grain: UInt64, header h: VmdkSparseHeader,
                       entry: String, into report: inout CheckReport) -> UInt64? {
        let size = file.size
        guard size - start >= 12, let m = try? file.read(at: start, count: 12) else {
            report.addCorruption("\(entry): the grain marker at offset \(start) is cut short by the end of the file")
            return nil
        }
        let lba = (0..<8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64(m[$1]) }
        let stored = UInt64((8..<12).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32(m[$1]) })
        let expected = grain * h.grainSectors
        if lba != expected {
            report.addCorruption("\(entry): the grain marker at offset \(start) says LBA \(lba), but the grain is at sector \(expected)")
            return nil
        }
        guard stored > 0, stored <= h.grainSize * 2 + 1024, stored <= size - start - 12 else {
            report.addCorruption("\(entry): the grain marker at offset \(start) gives a compressed size of \(stored) bytes, which does not fit")
            return nil
        }
        return stored
    }
}
