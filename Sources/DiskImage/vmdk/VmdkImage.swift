import WispCore

/// A VMDK disk read as a `BlockDevice`: its extents (sparse, flat or zero) laid end to
/// end, unallocated grains of sparse extents read from the parent (a snapshot's
/// `parentFileNameHint`, opened by the chain) or as zeros. Read-only.
public final class VmdkImage: BlockDevice, @unchecked Sendable {
    public let name: String
    public let size: UInt64
    public var isReadOnly: Bool { true }
    public let descriptor: VmdkDescriptor
    let parts: [Part]
    let backing: (any BlockDevice)?

    enum Storage {
        case sparse(VmdkSparseExtent)
        case flat(any BlockDevice, offset: UInt64)
        case zero
    }

    struct Part {
        let start: UInt64
        let length: UInt64
        let storage: Storage
        var end: UInt64 { start + length }
    }

    /// Opens member `index` of a resolved chain over `backing`; only the files the chain
    /// checked are opened.
    init(chain: BackingChain, index: Int, backing: (any BlockDevice)?) throws {
        let member = chain.members[index]
        guard let layout = member.vmdk else {
            throw WispError(.failed, "\(member.name): the VMDK descriptor was not checked")
        }
        name = member.name
        descriptor = layout.descriptor
        self.backing = backing
        let own = try FileBlockDevice(file: try chain.openFile(of: member))
        let files = try layout.openExtentFiles(own: own)
        var parts: [Part] = []
        var start: UInt64 = 0
        for (i, extent) in layout.descriptor.extents.enumerated() {
            let file = files[i]
            let part = try Self.part(extent, index: i, file: file, start: start, image: member.name)
            parts.append(part)
            start = part.end
        }
        self.parts = parts
        size = start
        if let backing, index + 1 < chain.members.count, let parentLayout = chain.members[index + 1].vmdk,
           let parentCID = descriptor.parentCID, let cid = parentLayout.descriptor.cid, cid != parentCID {
            _ = backing
            throw WispError.corrupt(member.name, "VMDK parentCID",
                                    "is \(String(parentCID, radix: 16)) but the parent \(chain.members[index + 1].name) has CID \(String(cid, radix: 16)): the parent changed after this snapshot was taken")
        }
    }

    /// Opens a single-file sparse VMDK (monolithicSparse, streamOptimized) held by
    /// `device`, such as a member of an OVA archive. Refers to no other file.
    public init(device: any BlockDevice, name: String) throws {
        self.name = name
        let extent = try VmdkSparseExtent(file: device, name: name)
        var d = VmdkDescriptor()
        if extent.header.descriptorSectors > 0 {
            let start = extent.header.descriptorOffset * 512
            let count = min(extent.header.descriptorSectors * 512, device.size - start)
            d = try VmdkDescriptor.parse(try device.read(at: start, count: Int(count)), name: name)
        }
        if d.hasParent {
            throw WispError(.permissionDenied, "\(name): VMDK parentFileNameHint \"\(d.parentFileNameHint ?? "")\" refers to another file; this image must be self-contained")
        }
        descriptor = d
        parts = [Part(start: 0, length: extent.capacityBytes, storage: .sparse(extent))]
        size = extent.capacityBytes
        backing = nil
    }

    static func part(_ extent: VmdkDescriptor.Extent, index: Int, file: (any BlockDevice)?, start: UInt64,
                     image: String) throws -> Part {
        let length = extent.sectors * 512
        let (_, overflow) = start.addingReportingOverflow(length)
        guard !overflow, start + length <= (UInt64(1) << 50) else {
            throw WispError.corrupt(image, "VMDK extents", "add up to more than 1 PiB")
        }
        switch extent.type {
        case .zero:
            return Part(start: start, length: length, storage: .zero)
        case .flat, .vmfs:
            guard let file else { throw WispError.corrupt(image, "VMDK extent \(index + 1)", "names no file") }
            let offset = extent.offsetSectors * 512
            guard offset + length <= file.size else {
                throw WispError.corrupt(image, "VMDK extent \(index + 1)",
                                        "\(length) bytes at offset \(offset) reach past the end of \(file.name) (\(file.size) bytes)")
            }
            return Part(start: start, length: length, storage: .flat(file, offset: offset))
        case .sparse, .vmfsSparse:
            guard let file else { throw WispError.corrupt(image, "VMDK extent \(index + 1)", "names no file") }
            let head = try file.read(at: 0, count: Int(min(4, file.size)))
            if head == Array("COWD".utf8) {
                throw WispError.unsupported(file.name, "ESX vmfsSparse (COWD) extents are not supported; convert the disk with vmkfstools or qemu-img first")
            }
            let sparse = try VmdkSparseExtent(file: file, name: file.name)
            guard sparse.capacityBytes >= length else {
                throw WispError.corrupt(image, "VMDK extent \(index + 1)",
                                        "the descriptor says \(extent.sectors) sectors but \(file.name) holds \(sparse.header.capacity)")
            }
            return Part(start: start, length: length, storage: .sparse(sparse))
        default:
            throw WispError.unsupported(image, "VMDK extent \(index + 1): \(extent.type.rawValue) extents are not supported")
        }
    }

    func partIndex(containing offset: UInt64) -> Int {
        var lo = 0, hi = parts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if parts[mid].start <= offset { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset: offset, count: UInt64(buffer.count), what: "read")
        var done = 0
        var i = partIndex(containing: offset)
        while done < buffer.count {
            let pos = offset + UInt64(done)
            while parts[i].end <= pos { i += 1 }
            let part = parts[i]
            let within = pos - part.start
            let n = Int(min(UInt64(buffer.count - done), part.length - within))
            let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)])
            switch part.storage {
            case .zero:
                chunk.initializeMemory(as: UInt8.self, repeating: 0)
            case .flat(let file, let base):
                try file.read(into: chunk, at: base + within)
            case .sparse(let extent):
                var p = 0
                while p < n {
                    let at = within + UInt64(p)
                    let m = Int(min(UInt64(n - p), extent.grainSize - at % extent.grainSize))
                    let piece = UnsafeMutableRawBufferPointer(rebasing: chunk[p..<(p + m)])
                    if try !extent.read(into: piece, at: at) {
                        if let backing, pos + UInt64(p) < backing.size {
                            let virt = pos + UInt64(p)
                            let k = Int(min(UInt64(m), backing.size - virt))
                            try backing.read(into: UnsafeMutableRawBufferPointer(rebasing: piece[0..<k]), at: virt)
                            if k < m { UnsafeMutableRawBufferPointer(rebasing: piece[k..<m]).initializeMemory(as: UInt8.self, repeating: 0) }
                        } else {
                            piece.initializeMemory(as: UInt8.self, repeating: 0)
                        }
                    }
                    p += m
                }
            }
            done += n
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        throw WispError.unsupported(name, "writing to VMDK images is not supported; convert to qcow2 first")
    }

    public func flush() throws {}

    public func allocationMap(offset: UInt64, length: UInt64) throws -> [AllocationExtent] {
        try checkRange(offset: offset, count: length, what: "allocation map")
        var out: [AllocationExtent] = []
        func add(_ o: UInt64, _ l: UInt64, _ k: AllocationKind) {
            guard l > 0 else { return }
            if let last = out.last, last.kind == k, last.end == o { out[out.count - 1].length += l } else {
                out.append(AllocationExtent(offset: o, length: l, kind: k))
            }
        }
        func hole(_ o: UInt64, _ l: UInt64) throws {
            guard let backing, o < backing.size else { add(o, l, .hole); return }
            let k = min(l, backing.size - o)
            for e in try backing.allocationMap(offset: o, length: k) { add(e.offset, e.length, e.kind) }
            add(o + k, l - k, .hole)
        }
        let end = offset + length
        var pos = offset
        var i = length == 0 ? 0 : partIndex(containing: offset)
        while pos < end {
            while parts[i].end <= pos { i += 1 }
            let part = parts[i]
            let stop = min(end, part.end)
            switch part.storage {
            case .zero: add(pos, stop - pos, .zero)
            case .flat: add(pos, stop - pos, .data)
            case .sparse(let extent):
                let per = UInt64(extent.header.gtesPerGT) * extent.grainSize
                while pos < stop {
                    let within = pos - part.start
                    let tableIndex = Int(within / per)
                    if try extent.table(tableIndex) == nil {
                        let n = min(stop - pos, per - within % per)
                        try hole(pos, n)
                        pos += n
                        continue
                    }
                    let n = min(stop - pos, extent.grainSize - within % extent.grainSize)
                    switch try extent.grain(containing: within) {
                    case .unallocated: try hole(pos, n)
                    case .zero: add(pos, n, .zero)
                    case .stored: add(pos, n, .data)
                    }
                    pos += n
                }
            }
            pos = stop
        }
        return out
    }
}
