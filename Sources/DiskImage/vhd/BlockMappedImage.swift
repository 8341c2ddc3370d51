import WispCore

/// Where one block of a block-mapped image (VHD, VHDX, VDI) lives.
enum MappedBlock: Sendable, Equatable {
    /// Never written: reads as zeros (or as the parent, for a differencing image).
    case unallocated
    /// Known to read as zeros.
    case zero
    /// Stored at this file offset.
    case data(UInt64)
    /// A differencing image's block: stored at `data`, but only the sectors whose bit is
    /// set in the bitmap at file offset `bitmap` come from this file; the others read as
    /// the parent.
    case partial(data: UInt64, bitmap: UInt64)
}

/// How a format numbers the bits of a differencing block's sector bitmap.
enum SectorBitmapOrder: Sendable {
    /// VHD: sector 0 is the most significant bit of byte 0.
    case msbFirst
    /// VHDX: sector 0 is bit 0 of byte 0.
    case lsbFirst
}

/// A read-only image whose virtual disk is cut into equal blocks, each stored somewhere
/// in the file or nowhere: the shape VHD, VHDX and VDI share. Parsers build the block
/// map, checked against the file's size, and hand it here; reads never trust it further.
final class BlockMappedImage: BlockDevice, @unchecked Sendable {
    let name: String
    let size: UInt64
    var isReadOnly: Bool { true }
    let blockSize: UInt64
    let blocks: [MappedBlock]
    let format: ImageFormat
    let subformat: String
    private let file: any BlockDevice
    /// What unallocated blocks read as; nil: zeros.
    let parent: (any BlockDevice)?
    /// The bytes one sector-bitmap bit stands for, and the bit order (partial blocks only).
    let bitmapSectorSize: UInt64
    let bitmapOrder: SectorBitmapOrder

    init(name: String, format: ImageFormat, subformat: String, size: UInt64, blockSize: UInt64,
         blocks: [MappedBlock], file: any BlockDevice, parent: (any BlockDevice)? = nil,
         bitmapSectorSize: UInt64 = 512, bitmapOrder: SectorBitmapOrder = .msbFirst) throws {
        guard blockSize > 0 else { throw WispError.corrupt(name, "block size", "is zero") }
        let needed = size / blockSize + (size % blockSize == 0 ? 0 : 1)
        guard UInt64(blocks.count) >= needed else {
            throw WispError.corrupt(name, "block map", "has \(blocks.count) entries for \(needed) blocks of a \(size)-byte disk")
        }
        guard bitmapSectorSize >= 512, blockSize % bitmapSectorSize == 0 else {
            throw WispError.corrupt(name, "sector size", "\(bitmapSectorSize) does not divide the \(blockSize)-byte block")
        }
        for (i, b) in blocks.enumerated() {
            let offset: UInt64
            switch b {
            case .data(let at): offset = at
            case .partial(let at, let bitmap):
                // The bitmap's bytes must be inside the file too.
                let (end, overflow) = bitmap.addingReportingOverflow(blockSize / bitmapSectorSize / 8)
                guard !overflow, end <= file.size else {
                    throw WispError.corrupt(name, "block map entry \(i)", "sector bitmap at \(bitmap) reaches past the end of the file (\(file.size) bytes)")
                }
                offset = at
            default: continue
            }
            // The last block of a file may be cut short (the rest reads as zeros, as in
            // qemu), but no block may start at or beyond the file's end.
            guard offset < file.size else {
                throw WispError.corrupt(name, "block map entry \(i)", "points at \(offset), beyond the end of the file (\(file.size) bytes)")
            }
        }
        self.name = name
        self.format = format
        self.subformat = subformat
        self.size = size
        self.blockSize = blockSize
        self.blocks = blocks
        self.file = file
        self.parent = parent
        self.bitmapSectorSize = bitmapSectorSize
        self.bitmapOrder = bitmapOrder
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset: offset, count: UInt64(buffer.count), what: "read")
        var done = 0
        while done < buffer.count {
            let position = offset + UInt64(done)
            let index = Int(position / blockSize)
            let within = position % blockSize
            let n = Int(min(UInt64(buffer.count - done), blockSize - within))
            let part = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)])
            switch blocks[index] {
            case .data(let base):
                try readStored(into: part, at: base + within)
            case .partial(let base, let bitmap):
                try readPartial(into: part, block: base, bitmap: bitmap, within: within, position: position)
            case .zero:
                part.initializeMemory(as: UInt8.self, repeating: 0)
            case .unallocated:
                try readParent(into: part, at: position)
            }
            done += n
        }
    }

    /// Reads stored bytes; what lies past the file's end reads as zeros (as in qemu).
    private func readStored(into part: UnsafeMutableRawBufferPointer, at start: UInt64) throws {
        let n = part.count
        let available = start < file.size ? min(UInt64(n), file.size - start) : 0
        if available > 0 {
            try file.read(into: UnsafeMutableRawBufferPointer(rebasing: part[0..<Int(available)]), at: start)
        }
        if Int(available) < n {
            UnsafeMutableRawBufferPointer(rebasing: part[Int(available)...]).initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    /// Splits a read inside a partly present block into runs of sectors from this file and
    /// from the parent, by the block's sector bitmap.
    private func readPartial(into part: UnsafeMutableRawBufferPointer, block base: UInt64, bitmap: UInt64,
                             within: UInt64, position: UInt64) throws {
        let ss = bitmapSectorSize
        let first = within / ss
        let last = (within + UInt64(part.count) - 1) / ss
        let bits = try file.read(at: bitmap + first / 8, count: Int(last / 8 - first / 8 + 1))
        func present(_ sector: UInt64) -> Bool {
            let byte = bits[Int(sector / 8 - first / 8)]
            let bit = sector % 8
            return (bitmapOrder == .msbFirst ? byte >> (7 - bit) : byte >> bit) & 1 == 1
        }
        var done = 0
        var sector = first
        while done < part.count {
            let here = present(sector)
            var end = sector + 1
            while end <= last, present(end) == here { end += 1 }
            let runEnd = min(end * ss - within, UInt64(part.count))
            let run = UnsafeMutableRawBufferPointer(rebasing: part[done..<Int(runEnd)])
            if here {
                try readStored(into: run, at: base + within + UInt64(done))
            } else {
                try readParent(into: run, at: position + UInt64(done))
            }
            done = Int(runEnd)
            sector = end
        }
    }

    private func readParent(into part: UnsafeMutableRawBufferPointer, at position: UInt64) throws {
        guard let parent else {
            part.initializeMemory(as: UInt8.self, repeating: 0)
            return
        }
        let available = position < parent.size ? min(UInt64(part.count), parent.size - position) : 0
        if available > 0 {
            try parent.read(into: UnsafeMutableRawBufferPointer(rebasing: part[0..<Int(available)]), at: position)
        }
        if Int(available) < part.count {
            UnsafeMutableRawBufferPointer(rebasing: part[Int(available)...]).initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        throw WispError.unsupported(name, "writing to \(format.rawValue) images in place is not supported (convert to qcow2)")
    }

    func flush() throws {}

    func allocationMap(offset: UInt64, length: UInt64) throws -> [AllocationExtent] {
        try checkRange(offset: offset, count: length, what: "allocation map")
        var extents: [AllocationExtent] = []
        func add(_ start: UInt64, _ len: UInt64, _ kind: AllocationKind) {
            if var last = extents.last, last.kind == kind, last.end == start {
                last.length += len
                extents[extents.count - 1] = last
            } else {
                extents.append(AllocationExtent(offset: start, length: len, kind: kind))
            }
        }
        var p = offset
        let end = offset + length
        while p < end {
            let index = Int(p / blockSize)
            let n = min(end - p, blockSize - p % blockSize)
            switch blocks[index] {
            case .data, .partial: add(p, n, .data)
            case .zero: add(p, n, .zero)
            case .unallocated:
                if let parent {
                    let inParent = p < parent.size ? min(n, parent.size - p) : 0
                    if inParent > 0 {
                        for e in try parent.allocationMap(offset: p, length: inParent) { add(e.offset, e.length, e.kind) }
                    }
                    if inParent < n { add(p + inParent, n - inParent, .hole) }
                } else {
                    add(p, n, .hole)
                }
            }
            p += n
        }
        return extents
    }

    /// File bytes the block map points at (the allocated size, as `qemu-img info` counts data).
    var allocatedBytes: UInt64 {
        blocks.reduce(0) {
            switch $1 {
            case .data, .partial: return $0 + blockSize
            default: return $0
            }
        }
    }
}

/// Byte-order helpers for parsers of hostile headers: every read is bounds-checked.
struct HeaderFields {
    let bytes: [UInt8]
    let name: String
    let structure: String
    let base: UInt64

    func u8(_ at: Int) throws -> UInt8 { try check(at, 1); return bytes[at] }
    func be16(_ at: Int) throws -> UInt16 { try check(at, 2); return UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
    func be32(_ at: Int) throws -> UInt32 {
        try check(at, 4)
        return (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(bytes[at + $1]) }
    }
    func be64(_ at: Int) throws -> UInt64 {
        try check(at, 8)
        return (0..<8).reduce(UInt64(0)) { $0 << 8 | UInt64(bytes[at + $1]) }
    }
    func le16(_ at: Int) throws -> UInt16 { try check(at, 2); return UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
    func le32(_ at: Int) throws -> UInt32 {
        try check(at, 4)
        return (0..<4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32(bytes[at + $1]) }
    }
    func le64(_ at: Int) throws -> UInt64 {
        try check(at, 8)
        return (0..<8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64(bytes[at + $1]) }
    }
    func slice(_ at: Int, _ count: Int) throws -> [UInt8] { try check(at, count); return Array(bytes[at..<(at + count)]) }

    private func check(_ at: Int, _ count: Int) throws {
        guard at >= 0, count >= 0, at <= bytes.count, count <= bytes.count - at else {
            throw WispError.corrupt(name, structure, at: base + UInt64(max(at, 0)), "truncated (\(bytes.count) bytes)")
        }
    }
}

extension BlockDevice {
    /// Reads exactly `count` bytes at `offset`, refusing (with the structure's name) any
    /// range outside the device.
    func readStructure(_ structure: String, at offset: UInt64, count: Int) throws -> [UInt8] {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(count))
        guard !overflow, end <= size else {
            throw WispError.corrupt(name, structure, at: offset, "\(count) bytes reach past the end of the file (\(size) bytes)")
        }
        return try read(at: offset, count: count)
    }
}

extension Array where Element == UInt8 {
    mutating func putBE(_ value: UInt64, at: Int, width: Int) {
        for i in 0..<width { self[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(width - 1 - i))) }
    }
    mutating func putLE(_ value: UInt64, at: Int, width: Int) {
        for i in 0..<width { self[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }
}
