import WispCore

/// `wisp image check` for every format: qcow2 through `Qcow2Checker` (refcounts, repair),
/// VHD, VHDX and VDI through `BlockMappedChecker`, VMDK through `VmdkChecker`. Raw images
/// have no metadata and are always clean.
///
/// A corruption the readers refuse while the chain is resolved (a BAT entry beyond the
/// file, a bad checksum) is reported in `corruptions`, like what the checkers find
/// themselves; any other refusal (policy, missing parent, unsupported feature) is thrown.
public enum ImageChecker {
    /// Formats whose metadata these checkers read besides qcow2.
    static let foreignFormats: Set<ImageFormat> = [.vhd, .vhdx, .vdi, .vmdk]

    /// `repair`: qcow2 only (refcounts); asking for it on another format is a usage error.
    public static func check(path: String, repair: Bool = false,
                             policy: ExternalReferencePolicy = .confinedToImageDirectory) throws -> CheckReport {
        if repair, let format = try? DiskImageFile.probe(path), format != .qcow2 {
            throw refuseRepair(path, format)
        }
        let chain: BackingChain
        do {
            chain = try BackingChain.resolve(path: path, policy: policy, writable: repair)
        } catch let error as WispError where error.kind == .corrupt || error.kind == .unsupported {
            guard let format = try? DiskImageFile.probe(path), foreignFormats.contains(format) else { throw error }
            return try checkUnresolved(path: path, format: format, error: error)
        }
        let top = chain.top
        switch top.format {
        case .qcow2:
            return try Qcow2Checker.check(chain: chain, path: path, repair: repair)
        case let format where repair:
            throw refuseRepair(path, format)
        case .raw:
            return CheckReport(filename: path, format: .raw)
        case .vhd, .vhdx, .vdi:
            let file = NamedDevice(try FileBlockDevice(file: try chain.openFile(of: top)), name: top.name)
            var report = try BlockMappedChecker.check(file, format: top.format, path: path)
            try openChain(chain, into: &report)
            return report
        case .vmdk:
            var report = try VmdkChecker.check(chain: chain, path: path)
            try openChain(chain, into: &report)
            return report
        case let other:
            throw WispError.unsupported(path, "checking \(other.rawValue) images is not supported")
        }
    }

    static func refuseRepair(_ path: String, _ format: ImageFormat) -> WispError {
        WispError.usage("\(path): --repair is supported for qcow2 images only; this is a \(format == .raw ? "raw" : format.rawValue.uppercased()) image (check it without --repair, or convert it to qcow2)")
    }

    /// The chain did not resolve: a block-mapped top is still checked on its own (the
    /// refusal may be one of several problems, or about its parent); a corruption is
    /// reported, anything else the checker does not explain is thrown.
    static func checkUnresolved(path: String, format: ImageFormat, error: WispError) throws -> CheckReport {
        var report = CheckReport(filename: path, format: format)
        if format != .vmdk {
            do {
                report = try BlockMappedChecker.check(try FileBlockDevice(path: path), format: format, path: path)
            } catch let inner as WispError where inner.kind == .corrupt {
                report.addCorruption(inner, file: path)
            }
        }
        if error.kind == .corrupt {
            report.addCorruption(error, file: path)
        } else if report.corruptions.isEmpty {
            throw error
        }
        return report
    }

    /// Opens the whole chain as reads would (VMDK parentCID, extent files, a parent's
    /// own metadata); a corruption found there is reported. A differencing VDI names its
    /// parent by UUID only and is not opened.
    static func openChain(_ chain: BackingChain, into report: inout CheckReport) throws {
        guard report.corruptions.isEmpty else { return }
        if chain.top.format == .vdi, chain.top.blockMapped?.isDifferencing == true { return }
        do {
            _ = try DiskImageFile.open(chain)
        } catch let error as WispError where error.kind == .corrupt {
            report.addCorruption(error, file: report.filename)
        }
    }
}

extension CheckReport {
    /// Corruptions listed at most (a hostile image can have millions).
    static let maxListed = 10_000

    /// Adds one corruption sentence; past `maxListed` only a last line saying so.
    mutating func addCorruption(_ sentence: String) {
        if corruptions.count < Self.maxListed {
            if listed.sentences.insert(sentence).inserted { corruptions.append(sentence) }
        } else if corruptions.count == Self.maxListed {
            corruptions.append("more corruptions were found; the list stops after \(Self.maxListed)")
        }
    }

    /// A reader's error as a corruption: its message without the checked file's name in
    /// front (the report names the file).
    mutating func addCorruption(_ error: WispError, file: String) {
        var text = error.message
        if text.hasPrefix(file + ": ") { text.removeFirst(file.count + 2) }
        addCorruption(text)
    }
}

/// The file ranges a checker found in use (metadata and data blocks), to find ranges that
/// overlap. A range is tagged: metadata ranges by name, data ranges by a number the
/// checker turns into words only when it reports one. At most `limit` ranges are kept.
struct FileRegions {
    struct Region {
        var start: UInt64
        var end: UInt64
        /// >= 0: a data range, the checker's number; < 0: metadata `-1 - tag`.
        var tag: Int
        var isMetadata: Bool { tag < 0 }
    }

    /// 2^25 ranges (768 MiB at most): 2 TiB of 64 KiB grains, far more of larger blocks.
    static let defaultLimit = 1 << 25

    let name: String
    let limit: Int
    private(set) var regions: [Region] = []
    private(set) var metadataNames: [String] = []

    init(name: String, limit: Int = FileRegions.defaultLimit) {
        self.name = name
        self.limit = limit
    }

    /// nil when `start + length` overflows.
    static func end(_ start: UInt64, _ length: UInt64) -> UInt64? {
        let (end, overflow) = start.addingReportingOverflow(length)
        return overflow ? nil : end
    }

    /// A metadata range (the caller checked it lies in the file); empty ones are ignored.
    /// Returns its tag (nil when empty).
    @discardableResult
    mutating func addMetadata(_ what: String, start: UInt64, end: UInt64) throws -> Int? {
        guard end > start else { return nil }
        metadataNames.append(what)
        try append(Region(start: start, end: end, tag: -metadataNames.count))
        return -metadataNames.count
    }

    mutating func addData(_ tag: Int, start: UInt64, end: UInt64) throws {
        guard end > start else { return }
        try append(Region(start: start, end: end, tag: tag))
    }

    private mutating func append(_ region: Region) throws {
        guard regions.count < limit else {
            throw WispError.unsupported(name, "the image uses more than \(limit) separate ranges of its file, more than check handles")
        }
        regions.append(region)
    }

    func metadataName(_ region: Region) -> String { metadataNames[-1 - region.tag] }

    /// Calls `body` with every range that overlaps one starting at or before it, and that
    /// one (the range reaching furthest so far): each overlapping range is named at least
    /// once. Pairs of metadata ranges are left out unless `metadataPairs`.
    mutating func forEachOverlap(metadataPairs: Bool = true, _ body: (Region, Region) -> Void) {
        sortRegions()
        sweep(metadataPairs: metadataPairs, body)
    }

    private mutating func sortRegions() {
        // Ties: the longer range first, then metadata (in the order added) before data (by
        // number), so the sentences do not depend on the sort.
        regions.sort {
            if $0.start != $1.start { return $0.start < $1.start }
            if $0.end != $1.end { return $0.end > $1.end }
            if $0.isMetadata != $1.isMetadata { return $0.isMetadata }
            return $0.isMetadata ? $0.tag > $1.tag : $0.tag < $1.tag
        }
    }

    private func sweep(metadataPairs: Bool, _ body: (Region, Region) -> Void) {
        var reach: Region?
        for r in regions {
            if let far = reach, r.start < far.end, metadataPairs || !(far.isMetadata && r.isMetadata) {
                body(r, far)
            }
            if reach == nil || r.end > reach!.end { reach = r }
        }
    }

    /// Reports each overlap as a corruption sentence (`prefix` first); none are formatted
    /// once the report's list is full.
    mutating func reportOverlaps(into report: inout CheckReport, metadataPairs: Bool = true, prefix: String = "",
                                 subject: (Int) -> String) {
        sortRegions()
        sweep(metadataPairs: metadataPairs) { a, b in
            guard report.corruptions.count <= CheckReport.maxListed else { return }
            report.addCorruption(prefix + sentence((a, b), subject: subject))
        }
    }

    /// One sentence for an overlap; `subject` names a data range ("the block of VHD BAT
    /// entry 3 (at offset 1548)").
    func sentence(_ pair: (Region, Region), subject: (Int) -> String) -> String {
        func phrase(_ r: Region) -> String {
            r.isMetadata ? "\(metadataName(r)) (\(r.end - r.start) bytes)" : subject(r.tag)
        }
        let (a, b) = pair
        if a.start == b.start {
            return "\(phrase(b)) and \(phrase(a)) both start at offset \(a.start)"
        }
        return "\(phrase(a)) at offset \(a.start) overlaps \(phrase(b)) at offset \(b.start)"
    }
}
