import WispCompression
import WispCore

/// One hosted sparse extent ("KDMV" file) read through its grain directory and grain
/// tables. Grain tables are loaded on first use and kept: each must lie inside the file,
/// so what is kept is bounded by the file's own size.
final class VmdkSparseExtent: @unchecked Sendable {
    let file: any BlockDevice
    let name: String
    let header: VmdkSparseHeader
    /// Sector offsets of the grain tables (0: none allocated).
    let directory: [UInt32]
    let grainSize: UInt64
    let capacityBytes: UInt64
    private let tables = LockedValue<[Int: [UInt32]]>([:])

    /// What one grain table entry says about a grain.
    enum Grain: Equatable {
        case unallocated
        case zero
        case stored(sector: UInt64)
    }

    init(file: any BlockDevice, name: String) throws {
        self.file = file
        self.name = name
        let fileSize = file.size
        var h = try VmdkSparseHeader.parse(try file.read(at: 0, count: Int(min(fileSize, 512))), name: name, fileSize: fileSize)
        if h.gdOffset == VmdkSparseHeader.gdAtEnd {
            // streamOptimized: the real header is the footer, before the end-of-stream marker.
            guard fileSize >= 1536 else {
                throw WispError.corrupt(name, "VMDK footer", "the header says the grain directory is at the end, but the file is only \(fileSize) bytes")
            }
            let footer = try VmdkSparseHeader.parse(try file.read(at: fileSize - 1024, count: 512), name: name + " footer", fileSize: fileSize)
            guard footer.gdOffset != VmdkSparseHeader.gdAtEnd else {
                throw WispError.corrupt(name, "VMDK footer", at: fileSize - 1024, "names no grain directory")
            }
            guard footer.capacity == h.capacity, footer.grainSectors == h.grainSectors, footer.gtesPerGT == h.gtesPerGT else {
                throw WispError.corrupt(name, "VMDK footer", at: fileSize - 1024, "disagrees with the header on capacity or grain geometry")
            }
            h.gdOffset = footer.gdOffset
        }
        header = h
        grainSize = h.grainSize
        capacityBytes = h.capacity * VmdkSparseHeader.sector
        let entries = h.gdEntries
        let (gdStart, o1) = h.gdOffset.multipliedReportingOverflow(by: VmdkSparseHeader.sector)
        let (gdEnd, o2) = gdStart.addingReportingOverflow(entries * 4)
        guard !o1, !o2, gdEnd <= fileSize else {
            throw WispError.corrupt(name, "VMDK grain directory", at: gdStart,
                                    "\(entries) entries at sector \(h.gdOffset) reach past the end of the file (\(fileSize) bytes)")
        }
        let bytes = try file.read(at: gdStart, count: Int(entries * 4))
        directory = Self.decode32(bytes)
    }

    static func decode32(_ b: [UInt8]) -> [UInt32] {
        var out = [UInt32](repeating: 0, count: b.count / 4)
        b.withUnsafeBytes { raw in
            for i in 0..<out.count { out[i] = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)) }
        }
        return out
    }

    func table(_ index: Int) throws -> [UInt32]? {
        guard index < directory.count else { return nil }
        let sector = directory[index]
        if sector == 0 { return nil }
        if let t = tables.withLock({ $0[index] }) { return t }
        let count = Int(header.gtesPerGT) * 4
        let start = UInt64(sector) * VmdkSparseHeader.sector
        guard start + UInt64(count) <= file.size else {
            throw WispError.corrupt(name, "VMDK grain directory entry \(index)", at: header.gdOffset * 512 + UInt64(index) * 4,
                                    "grain table at sector \(sector) reaches past the end of the file (\(file.size) bytes)")
        }
        let t = Self.decode32(try file.read(at: start, count: count))
        tables.withLock { $0[index] = t }
        return t
    }

    func grain(containing offset: UInt64) throws -> Grain {
        let g = offset / grainSize
        let per = UInt64(header.gtesPerGT)
        guard let t = try table(Int(g / per)) else { return .unallocated }
        let entry = t[Int(g % per)]
        switch entry {
        case 0: return .unallocated
        case 1: return .zero
        default: return .stored(sector: UInt64(entry))
        }
    }

    /// Fills `buffer` (inside one grain) with the grain's bytes at `offset`; returns false
    /// when the grain is unallocated (the caller reads the parent).
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Bool {
        switch try grain(containing: offset) {
        case .unallocated: return false
        case .zero:
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            return true
        case .stored(let sector):
            let start = sector * VmdkSparseHeader.sector
            let within = offset % grainSize
            guard start < file.size else {
                throw WispError.corrupt(name, "VMDK grain table entry", "grain at sector \(sector) (virtual offset \(offset - within)) is past the end of the file (\(file.size) bytes)")
            }
            if header.isCompressed {
                let grain = try readCompressed(at: start, virtual: offset - within)
                grain.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(within)..<(Int(within) + buffer.count)])) }
            } else {
                let available = file.size - start
                let wanted = within + UInt64(buffer.count)
                if wanted <= available {
                    try file.read(into: buffer, at: start + within)
                } else {
                    // The last grain of a file may be stored short: the rest reads as zeros.
                    buffer.initializeMemory(as: UInt8.self, repeating: 0)
                    if within < available {
                        let n = Int(available - within)
                        try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]), at: start + within)
                    }
                }
            }
            return true
        }
    }

    /// A compressed grain: with markers a 12-byte header (LBA, size) precedes the zlib data.
    func readCompressed(at start: UInt64, virtual: UInt64) throws -> [UInt8] {
        let fileSize = file.size
        var dataStart = start
        var length = min(grainSize * 2 + 1024, fileSize - start)
        if header.hasMarkers {
            guard fileSize - start >= 12 else {
                throw WispError.corrupt(name, "VMDK grain marker", at: start, "truncated")
            }
            let m = try file.read(at: start, count: 12)
            let lba = m.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            let size = m.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }
            guard lba.multipliedReportingOverflow(by: VmdkSparseHeader.sector) == (virtual, false) else {
                throw WispError.corrupt(name, "VMDK grain marker", at: start, "says LBA \(lba), but the grain table puts it at sector \(virtual / 512)")
            }
            guard size > 0, UInt64(size) <= grainSize * 2 + 1024, UInt64(size) <= fileSize - start - 12 else {
                throw WispError.corrupt(name, "VMDK grain marker", at: start, "compressed size \(size) does not fit")
            }
            dataStart = start + 12
            length = UInt64(size)
        }
        let compressed = try file.read(at: dataStart, count: Int(length))
        var grain = try Deflate.inflate(compressed, framing: .zlib, limit: Int(grainSize),
                                        context: "\(name) grain at \(start)")
        if grain.count < Int(grainSize) {
            grain.append(contentsOf: [UInt8](repeating: 0, count: Int(grainSize) - grain.count))
        }
        return grain
    }
}
