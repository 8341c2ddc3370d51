import WispCore

/// `wisp image check` for VHDX: both headers (signature, CRC-32C; two valid headers with
/// the same sequence number must be identical, as qemu requires), both region table
/// copies, a log that needs replay, every payload and sector bitmap BAT entry inside the
/// file, and no payload block, sector bitmap block, header section, log, BAT or metadata
/// region sharing bytes with another. The reader's layout (parsed leniently) supplies the
/// regions and the block map.
enum VhdxChecker {
    static let headerOffsets: [UInt64] = [64 << 10, 128 << 10]
    static let regionTableOffsets: [UInt64] = [192 << 10, 256 << 10]
    static let mib: UInt64 = 1 << 20

    static func check(_ file: any BlockDevice, into report: inout CheckReport) throws {
        let name = file.name
        let size = file.size
        checkHeaders(file, into: &report)
        for (n, at) in regionTableOffsets.enumerated() {
            guard let bytes = try? file.readStructure("VHDX region table", at: at, count: 64 << 10) else {
                report.addCorruption("VHDX region table \(n + 1) at offset \(at): the file ends before it (\(size) bytes)")
                continue
            }
            if Array(bytes[0..<4]) != Array("regi".utf8) {
                report.addCorruption("VHDX region table \(n + 1) at offset \(at): no \"regi\" signature")
            } else if !VhdxImage.crcHolds(bytes) {
                report.addCorruption("VHDX region table \(n + 1) at offset \(at): \(crcMismatch(bytes))")
            }
        }

        let layout = try VhdxImage.parse(file, lenient: true)
        for problem in layout.problems { report.addCorruption(problem, file: name) }
        var regions = FileRegions(name: name)
        // The parent locator lies inside the metadata region: not a range of its own here.
        for m in layout.metadata where m.what != "the parent locator" {
            try BlockMappedChecker.addMetadata(BlockMappedChecker.named("VHDX", m.what), offset: m.offset, length: m.length,
                                               fileSize: size, to: &regions, report: &report)
        }
        if layout.log.length > 0 {
            let (offset, length) = layout.log
            if offset < mib || offset % mib != 0 || length % mib != 0 {
                report.addCorruption("VHDX log at offset \(offset) (\(length) bytes): not 1 MiB aligned after the header section")
            }
            try BlockMappedChecker.addMetadata("the VHDX log", offset: offset, length: length, fileSize: size,
                                               to: &regions, report: &report)
        }

        // Tags: payload entries by BAT index; sector bitmap entries by BAT index too (the
        // index says which: every (chunkRatio + 1)th entry is a sector bitmap's).
        let ratio = layout.chunkRatio
        func entry(_ index: Int) -> String {
            "VHDX BAT entry \(index) (at offset \(layout.bat.offset + UInt64(index) * 8))"
        }
        func subject(_ index: Int) -> String {
            UInt64(index) % (ratio + 1) == ratio ? "the sector bitmap block of \(entry(index))" : "the payload block of \(entry(index))"
        }
        report.totalClusters = UInt64(layout.blocks.count)
        for (i, block) in layout.blocks.enumerated() {
            let offset: UInt64
            switch block {
            case .data(let at), .partial(let at, _): offset = at
            default: continue
            }
            report.allocatedClusters += 1
            let index = i + i / Int(ratio)
            // The parse checked 1 MiB <= offset < file size. As qemu, the last block may
            // be cut short by the end of the file.
            let end = min(FileRegions.end(offset, layout.blockSize) ?? size, size)
            try regions.addData(index, start: offset, end: end)
        }
        // Sector bitmap entries, one after each chunk's payload entries.
        let chunks = (UInt64(layout.blocks.count) + ratio - 1) / ratio
        for c in 0..<chunks {
            let index = c * (ratio + 1) + ratio
            let at = layout.bat.offset + index * 8
            guard index * 8 + 8 <= layout.bat.length else { break }
            let bytes = try file.readStructure("VHDX BAT", at: at, count: 8)
            let e = (0..<8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64(bytes[$1]) }
            let state = e & 7
            let offset = e & ~UInt64(0xFFFFF)
            switch state {
            case 0: continue
            case 6:
                guard offset >= mib, let end = FileRegions.end(offset, mib), end <= size else {
                    report.addCorruption("\(entry(Int(index))): the sector bitmap block of chunk \(c) at \(offset) is outside the file (\(size) bytes)")
                    continue
                }
                try regions.addData(Int(index), start: offset, end: end)
            default:
                report.addCorruption("\(entry(Int(index))): state \(state) is not valid for the sector bitmap entry of chunk \(c)")
            }
        }
        regions.reportOverlaps(into: &report, subject: subject)
    }

    /// Both headers must be valid; which is current is the higher sequence number, and two
    /// valid headers with the same number must be the same header.
    static func checkHeaders(_ file: any BlockDevice, into report: inout CheckReport) {
        var valid: [(n: Int, seq: UInt64, bytes: [UInt8])] = []
        for (i, at) in headerOffsets.enumerated() {
            let n = i + 1
            guard let bytes = try? file.readStructure("VHDX header", at: at, count: 4096) else {
                report.addCorruption("VHDX header \(n) at offset \(at): the file ends before it (\(file.size) bytes)")
                continue
            }
            if Array(bytes[0..<4]) != Array("head".utf8) {
                report.addCorruption("VHDX header \(n) at offset \(at): no \"head\" signature")
            } else if !VhdxImage.crcHolds(bytes) {
                report.addCorruption("VHDX header \(n) at offset \(at): \(crcMismatch(bytes))")
            } else {
                let seq = (8..<16).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64(bytes[$1]) }
                valid.append((n, seq, bytes))
            }
        }
        if valid.count == 2, valid[0].seq == valid[1].seq, valid[0].bytes != valid[1].bytes {
            report.addCorruption("VHDX headers 1 and 2 (at offsets \(headerOffsets[0]) and \(headerOffsets[1])) differ but have the same sequence number \(valid[0].seq): neither is current")
        }
    }

    /// "CRC-32C 0x… does not match its contents (0x…)" for a structure whose checksum is at 4.
    static func crcMismatch(_ bytes: [UInt8]) -> String {
        let stored = (4..<8).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32(bytes[$1]) }
        var copy = bytes
        copy.replaceSubrange(4..<8, with: [0, 0, 0, 0])
        return "CRC-32C \(hex(stored)) does not match its contents (\(hex(CRC32C.checksum(copy))))"
    }
}
