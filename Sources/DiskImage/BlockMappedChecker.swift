import WispCore

/// `wisp image check` for the block-mapped formats: the metadata the readers parse (their
/// layouts, parsed leniently so one bad entry does not hide the others), checked the way
/// `qemu-img check` does where it checks the format, and further:
///
/// - VHD: the footer's checksum, the footer copy at offset 0 agreeing with it, the dynamic
///   header's checksum, every BAT entry's block (sector bitmap and data) inside the file
///   and before the trailing footer, no two blocks sharing bytes, none over the metadata.
///   A fixed image must hold its whole disk before the footer.
/// - VDI: every block map entry inside the image's blocks and its block inside the file,
///   no two entries on the same block, the header's allocated-block count (as qemu).
/// - VHDX: see `VhdxChecker`.
///
/// A corruption the reader cannot parse past is reported as its one sentence.
enum BlockMappedChecker {
    static func check(_ file: any BlockDevice, format: ImageFormat, path: String) throws -> CheckReport {
        var report = CheckReport(filename: path, format: format)
        report.imageEndOffset = file.size
        do {
            switch format {
            case .vhd: try checkVhd(file, into: &report)
            case .vhdx: try VhdxChecker.check(file, into: &report)
            case .vdi: try checkVdi(file, into: &report)
            default: throw WispError.unsupported(path, "\(format.rawValue) is not a block-mapped format")
            }
        } catch let error as WispError where error.kind == .corrupt {
            report.addCorruption(error, file: file.name)
        }
        return report
    }

    /// A layout's name for a structure with the format in it: "the BAT" → "the VHD BAT".
    static func named(_ format: String, _ what: String) -> String {
        what.hasPrefix("the ") ? "the \(format) \(what.dropFirst(4))" : "the \(format) \(what)"
    }

    /// A metadata range the layout names; one outside the file is reported instead (nil).
    @discardableResult
    static func addMetadata(_ what: String, offset: UInt64, length: UInt64, fileSize: UInt64,
                            to regions: inout FileRegions, report: inout CheckReport) throws -> Int? {
        guard let end = FileRegions.end(offset, length), end <= fileSize else {
            report.addCorruption("\(what) at offset \(offset) (\(length) bytes) reaches past the end of the file (\(fileSize) bytes)")
            return nil
        }
        return try regions.addMetadata(what, start: offset, end: end)
    }

    // MARK: - VHD

    static func checkVhd(_ file: any BlockDevice, into report: inout CheckReport) throws {
        let name = file.name
        let size = file.size
        guard size >= 512 else {
            _ = try VhdImage.parse(file, lenient: true)  // throws the sentence
            return
        }
        // Both footers, each on its own: the reader falls back to the copy silently.
        let tailOffset = size - 512
        var tail: VhdFooter?
        do {
            tail = try VhdFooter.parse(try file.read(at: tailOffset, count: 512), name: name, at: tailOffset)
        } catch let error as WispError where error.kind == .corrupt {
            report.addCorruption(error, file: name)
        }
        if tail?.diskType != .fixed, size >= 1024 {
            let head = try file.read(at: 0, count: 512)
            // Without a readable footer, offset 0 is a copy only if it looks like one (a
            // fixed image's first sector is data).
            if tail != nil || Array(head[0..<8]) == VhdFooter.cookie {
                do {
                    let copy = try VhdFooter.parse(head, name: name, at: 0)
                    if let tail, copy != tail {
                        report.addCorruption("VHD footer copy at offset 0 differs from the footer at offset \(tailOffset)")
                    }
                } catch let error as WispError where error.kind == .corrupt {
                    report.addCorruption(error, file: name)
                }
            }
        }
        let layout = try VhdImage.parse(file, lenient: true)
        for problem in layout.problems { report.addCorruption(problem, file: name) }
        report.totalClusters = UInt64(layout.blocks.count)
        if layout.footer.diskType == .fixed {
            report.allocatedClusters = layout.blocks.count
            if tailOffset < layout.footer.virtualSize {
                report.addCorruption("VHD footer at offset \(tailOffset): the fixed image holds \(tailOffset) bytes of data before its footer, less than its \(layout.footer.virtualSize)-byte disk")
            }
            return
        }
        var regions = FileRegions(name: name)
        for m in layout.metadata {
            try addMetadata(named("VHD", m.what), offset: m.offset, length: m.length, fileSize: size,
                            to: &regions, report: &report)
        }
        let blockBytes = layout.bitmapBytes + layout.blockSize
        func entry(_ i: Int) -> String { "VHD BAT entry \(i) (at offset \(layout.tableOffset + UInt64(i) * 4))" }
        for (i, block) in layout.blocks.enumerated() {
            let data: UInt64
            switch block {
            case .data(let at), .partial(let at, _): data = at
            default: continue
            }
            report.allocatedClusters += 1
            // The parse made data = sector * 512 + bitmapBytes, below the file's size.
            let start = data - layout.bitmapBytes
            guard let end = FileRegions.end(start, blockBytes), end <= size else {
                report.addCorruption("\(entry(i)): the block at offset \(start) (\(blockBytes) bytes with its sector bitmap) reaches past the end of the file (\(size) bytes)")
                continue
            }
            try regions.addData(i, start: start, end: end)
        }
        regions.reportOverlaps(into: &report) { "the block of \(entry($0))" }
    }

    // MARK: - VDI

    static func checkVdi(_ file: any BlockDevice, into report: inout CheckReport) throws {
        let name = file.name
        let size = file.size
        let layout = try VdiImage.parse(file, lenient: true)
        for problem in layout.problems { report.addCorruption(problem, file: name) }
        var regions = FileRegions(name: name)
        for m in layout.metadata {
            try addMetadata(named("VDI", m.what), offset: m.offset, length: m.length, fileSize: size,
                            to: &regions, report: &report)
        }
        report.totalClusters = UInt64(layout.blocks.count)
        func entry(_ i: Int) -> String { "VDI block map entry \(i) (at offset \(layout.mapOffset + UInt64(i) * 4))" }
        var allocated: UInt64 = 0
        for (i, block) in layout.blocks.enumerated() {
            guard case .data(let at) = block else { continue }
            allocated += 1
            let index = layout.dataIndexes[i].map(String.init) ?? "?"
            // The parse made at = dataOffset + index * (blockSize + extra) + extra < file size.
            let start = at - layout.blockExtra
            let length = layout.blockExtra + layout.blockSize
            guard let end = FileRegions.end(start, length), end <= size else {
                report.addCorruption("\(entry(i)): block \(index) at offset \(start) (\(length) bytes) reaches past the end of the file (\(size) bytes)")
                continue
            }
            try regions.addData(i, start: start, end: end)
        }
        report.allocatedClusters = Int(allocated)
        // qemu compares the header's count with the map's; Wisp reads only the entries the
        // disk size needs, so it compares only when that is all of them.
        if layout.blocksInImage == UInt64(layout.blocks.count), layout.problems.isEmpty,
           allocated != layout.blocksAllocated {
            report.addCorruption("VDI header at offset 388: says \(layout.blocksAllocated) blocks are allocated, but the block map uses \(allocated)")
        }
        regions.reportOverlaps(into: &report) { i in
            "the block of VDI block map entry \(i) (at offset \(layout.mapOffset + UInt64(i) * 4), block \(layout.dataIndexes[i].map(String.init) ?? "?"))"
        }
    }
}
