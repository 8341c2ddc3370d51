import Foundation
import WispCompression
import WispCore

/// A qcow2 image (version 2 or 3) as a `BlockDevice`, backing chain included.
///
/// Reads are thread-safe: metadata lookups (L1, cached L2 tables) happen under a lock, data
/// I/O and decompression outside it. Writes are serialised by a second lock and keep the
/// image consistent at every step (refcount first, then data, then the L2 entry), so
/// `qemu-img check` finds nothing even without lazy refcounts.
public final class Qcow2Image: BlockDevice, @unchecked Sendable {
    public let name: String
    /// The canonical path of the image file.
    public let path: String
    public let isReadOnly: Bool
    /// The image this one falls back to for clusters it does not hold.
    public let backing: (any BlockDevice)?
    /// What `BackingChain.resolve` found and checked for this image.
    public let chainMember: BackingChain.Member

    let file: PosixFile
    /// The external data file guest data lives in, when the image has one (else `file`).
    let dataFile: PosixFile?
    let clusterBits: Int
    let clusterSize: Int
    let l2Entries: Int
    let extendedL2: Bool
    let subclusterSize: Int

    /// Guards `header`, `l1`, the caches, the refcount table and `fileEnd`.
    let lock = NSLock()
    /// Serialises writers (reads do not take it).
    let writeLock = NSLock()
    var header: Qcow2Header
    var l1: [UInt64]
    var l2Cache: LRUCache<UInt64, Qcow2Table>
    var clusterCache = LRUCache<UInt64, [UInt8]>(capacity: 8)
    var refcountTable: [UInt64]
    var refcountBlockCache = LRUCache<UInt64, Qcow2RefcountBlock>(capacity: 32)
    /// Where the next cluster is appended.
    var fileEnd: UInt64

    static let offsetMask: UInt64 = 0x00FF_FFFF_FFFF_FE00
    static let copiedFlag: UInt64 = 1 << 63
    static let compressedFlag: UInt64 = 1 << 62
    static let zeroFlag: UInt64 = 1

    public var size: UInt64 { lock.withLock { header.size } }
    public var headerSnapshot: Qcow2Header { lock.withLock { header } }

    /// Opens `path` with its backing chain, resolved under `policy` (by default confined
    /// to the image's directory). Writable opens refuse corrupt or dirty images, images
    /// with internal snapshots or an external data file; backing files are read-only.
    public convenience init(path: String, writable: Bool = false,
                            policy: ExternalReferencePolicy = .confinedToImageDirectory) throws {
        let chain = try BackingChain.resolve(path: path, format: .qcow2, policy: policy, writable: writable)
        let backing = chain.members.count > 1 ? try chain.openMembers(from: 1) : nil
        try self.init(chain: chain, index: 0, backing: backing)
    }

    /// Opens member `index` of a resolved chain over `backing` (the members below it,
    /// already open). Never follows a name from the header: the chain says what to open.
    init(chain: BackingChain, index: Int, backing: (any BlockDevice)?) throws {
        let member = chain.members[index]
        let writable = !member.isReadOnly
        chainMember = member
        path = member.path
        name = member.name
        file = try chain.openFile(of: member)
        isReadOnly = !writable
        let device = try FileBlockDevice(file: file)
        header = try Qcow2Header.parse(device, name: name)
        // The references must be those that were checked.
        let checked = member.qcow2Header
        guard header.backingFile == checked?.backingFile, header.backingFormat == checked?.backingFormat,
              header.hasExternalDataFile == checked?.hasExternalDataFile, header.dataFile == checked?.dataFile else {
            throw WispError(.failed, "\(name): the image's backing or data file changed since its chain was checked")
        }
        if header.hasExternalDataFile {
            guard let checkedDataFile = member.dataFile else {
                throw WispError(.failed, "\(name): the image's external data file was not checked")
            }
            if writable {
                throw WispError.unsupported(name, "writing to qcow2 images with an external data file is not supported")
            }
            dataFile = try chain.openDataFile(checkedDataFile)
        } else {
            dataFile = nil
        }
        self.backing = backing
        clusterBits = Int(header.clusterBits)
        clusterSize = header.clusterSize
        l2Entries = header.l2Entries
        extendedL2 = header.hasExtendedL2
        subclusterSize = extendedL2 ? clusterSize / 32 : clusterSize
        l2Cache = LRUCache(capacity: max(16, min(512, (32 << 20) / clusterSize)))
        let fileSize = device.size
        fileEnd = (fileSize + UInt64(clusterSize) - 1) / UInt64(clusterSize) * UInt64(clusterSize)

        let l1Bytes = try file.readExactly(at: header.l1TableOffset, count: Int(header.l1Size) * 8)
        l1 = Self.decodeBE64(l1Bytes)
        let rtBytes = try file.readExactly(at: header.refcountTableOffset,
                                           count: Int(header.refcountTableClusters) * clusterSize)
        refcountTable = Self.decodeBE64(rtBytes)

        if writable {
            if header.isCorrupt {
                throw WispError(.corrupt, "\(name): the image is marked corrupt; it can only be opened read-only (repair it with qemu-img check -r all)")
            }
            if header.isDirty {
                throw WispError(.failed, "\(name): the image is marked dirty (lazy refcounts were not flushed); run 'wisp image check --repair' or 'qemu-img check -r all' before writing")
            }
            if header.snapshotCount > 0 {
                throw WispError.unsupported(name, "writing to qcow2 images with internal snapshots is not supported")
            }
            if header.refcountOrder > 6 {
                throw WispError.unsupported(name, "refcount order \(header.refcountOrder)")
            }
        }

        if writable && header.autoclearFeatures != 0 {
            // We do not maintain bitmaps: the spec asks writers that do not understand
            // autoclear features to clear them so readers know they are stale.
            header.autoclearFeatures = 0
            var b = [UInt8](repeating: 0, count: 8)
            b.putBE64(0, at: 0)
            if header.version == 3 { try file.write(b, at: 88) }
        }
    }

    /// Relative backing names are relative to the overlay's directory as named (as in QEMU).
    static func resolveBacking(_ backing: String, relativeTo overlay: String) -> String {
        if backing.hasPrefix("/") { return backing }
        let dir = (overlay as NSString).deletingLastPathComponent
        return dir.isEmpty ? backing : dir + "/" + backing
    }

    static func decodeBE64(_ bytes: [UInt8]) -> [UInt64] {
        var out = [UInt64](repeating: 0, count: bytes.count / 8)
        bytes.withUnsafeBytes { raw in
            for i in 0..<out.count {
                out[i] = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
            }
        }
        return out
    }

    // MARK: - Mapping

    /// What one virtual cluster maps to.
    enum Mapping {
        case unallocated
        case zero
        case data(host: UInt64)
        case compressed(host: UInt64, length: Int)
        /// Extended L2: host may be 0; bitmap low 32 bits = allocated, high 32 = zero.
        case subclusters(host: UInt64, bitmap: UInt64)
    }

    /// Raw L2 descriptor (+ bitmap) for a virtual cluster; (0, 0) when no L2 table maps it.
    func l2Entry(forCluster cluster: UInt64) throws -> (entry: UInt64, bitmap: UInt64, l2Offset: UInt64) {
        let l1Index = cluster / UInt64(l2Entries)
        guard l1Index < UInt64(l1.count) else { return (0, 0, 0) }
        let l2Offset = l1[Int(l1Index)] & Self.offsetMask
        guard l2Offset != 0 else { return (0, 0, 0) }
        let table = try l2Table(at: l2Offset, l1Index: Int(l1Index))
        let index = Int(cluster % UInt64(l2Entries))
        if extendedL2 {
            return (table.entries[index * 2], table.entries[index * 2 + 1], l2Offset)
        }
        return (table.entries[index], 0, l2Offset)
    }

    /// Loads (or finds in the cache) the L2 table at `offset`. Caller holds `lock`.
    func l2Table(at offset: UInt64, l1Index: Int) throws -> Qcow2Table {
        if let cached = l2Cache.get(offset) { return cached }
        guard offset % UInt64(clusterSize) == 0 else {
            throw WispError.corrupt(name, "L1 entry \(l1Index)", at: header.l1TableOffset + UInt64(l1Index) * 8,
                                    "L2 table offset \(offset) is not cluster aligned")
        }
        let fileSize = try file.size()
        guard offset < fileSize else {
            throw WispError.corrupt(name, "L1 entry \(l1Index)", at: header.l1TableOffset + UInt64(l1Index) * 8,
                                    "L2 table at \(offset) lies past the end of the file (\(fileSize) bytes)")
        }
        var bytes = [UInt8](repeating: 0, count: clusterSize)
        try bytes.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
        let table = Qcow2Table(entries: Self.decodeBE64(bytes))
        l2Cache.put(offset, table)
        return table
    }

    func mapping(forCluster cluster: UInt64) throws -> Mapping {
        let (entry, bitmap, l2Offset) = try l2Entry(forCluster: cluster)
        return try decode(entry: entry, bitmap: bitmap, cluster: cluster, l2Offset: l2Offset)
    }

    func decode(entry: UInt64, bitmap: UInt64, cluster: UInt64, l2Offset: UInt64) throws -> Mapping {
        if entry & Self.compressedFlag != 0 {
            guard dataFile == nil else {
                throw WispError.corrupt(name, "L2 entry for cluster \(cluster)", at: entryLocation(cluster, l2Offset),
                                        "a compressed cluster in an image with an external data file")
            }
            let shift = 62 - (clusterBits - 8)
            let offsetMask: UInt64 = (1 << UInt64(shift)) - 1
            let sizeMask: UInt64 = (1 << UInt64(clusterBits - 8)) - 1
            let host = entry & offsetMask
            let sectors = ((entry >> UInt64(shift)) & sizeMask) + 1
            let length = Int(sectors * 512) - Int(host & 511)
            // fileEnd (the cluster-rounded file length, kept current by writers) avoids an
            // fstat per cluster.
            guard host < fileEnd, host > 0 else {
                throw WispError.corrupt(name, "L2 entry for cluster \(cluster)", at: entryLocation(cluster, l2Offset),
                                        "compressed cluster at \(host) lies outside the file (\(fileEnd) bytes)")
            }
            return .compressed(host: host, length: length)
        }
        let host = entry & Self.offsetMask
        // Offsets into an external data file are not bounded by this file's length (what
        // lies past the data file's end reads as zeros).
        if host != 0 {
            guard host % UInt64(clusterSize) == 0, dataFile != nil || host < fileEnd else {
                throw WispError.corrupt(name, "L2 entry for cluster \(cluster)", at: entryLocation(cluster, l2Offset),
                                        "data cluster offset \(host) is unaligned or past the end of the file (\(fileEnd) bytes)")
            }
        }
        // In an external data file 0 is a valid offset: the COPIED flag (every data file
        // cluster has refcount 1) tells an allocated cluster there from an unallocated one.
        let hasHost = host != 0 || (dataFile != nil && entry & Self.copiedFlag != 0)
        if extendedL2 {
            if bitmap & 0xFFFF_FFFF != 0 && !hasHost {
                throw WispError.corrupt(name, "L2 entry for cluster \(cluster)", at: entryLocation(cluster, l2Offset),
                                        "subclusters are marked allocated but the cluster has no host offset")
            }
            return .subclusters(host: host, bitmap: bitmap)
        }
        if header.version >= 3 && entry & Self.zeroFlag != 0 { return .zero }
        return hasHost ? .data(host: host) : .unallocated
    }

    func entryLocation(_ cluster: UInt64, _ l2Offset: UInt64) -> UInt64 {
        l2Offset + UInt64(Int(cluster % UInt64(l2Entries)) * header.l2EntrySize)
    }

    // MARK: - Reading

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        guard buffer.count > 0 else { return }
        let mask = UInt64(clusterSize - 1)
        let firstCluster = offset >> UInt64(clusterBits)
        // Resolve every cluster of the request in one lock hold: with several readers
        // (convert's workers) a lock taken per cluster convoys badly on a busy machine.
        let maps: [Mapping] = try lock.withLock {
            let (end, overflow) = offset.addingReportingOverflow(UInt64(buffer.count))
            guard !overflow, end <= header.size else {
                throw WispError.corrupt(name, "read", at: offset,
                                        "\(buffer.count) bytes reach past the end of the device (\(header.size) bytes)")
            }
            let lastCluster = (end - 1) >> UInt64(clusterBits)
            var result: [Mapping] = []
            result.reserveCapacity(Int(lastCluster - firstCluster + 1))
            for c in firstCluster...lastCluster { result.append(try mapping(forCluster: c)) }
            return result
        }
        var done = 0
        var index = 0
        while done < buffer.count {
            let position = offset + UInt64(done)
            let cluster = firstCluster + UInt64(index)
            let inCluster = Int(position & mask)
            var n = min(clusterSize - inCluster, buffer.count - done)
            let map = maps[index]
            index += 1
            // Extend plain data runs over following clusters that are contiguous on the host.
            if case .data(let host) = map {
                while done + n < buffer.count, index < maps.count, n < 8 << 20,
                      case .data(let h) = maps[index],
                      h == host + (firstCluster + UInt64(index) - cluster) * UInt64(clusterSize) {
                    n += min(clusterSize, buffer.count - done - n)
                    index += 1
                }
            }
            let dest = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)])
            try readMapped(map, cluster: cluster, inCluster: inCluster, into: dest, virtual: position)
            done += n
        }
    }

    func readMapped(_ map: Mapping, cluster: UInt64, inCluster: Int, into dest: UnsafeMutableRawBufferPointer,
                    virtual: UInt64) throws {
        switch map {
        case .unallocated:
            try readBacking(into: dest, at: virtual)
        case .zero:
            dest.initializeMemory(as: UInt8.self, repeating: 0)
        case .data(let host):
            try (dataFile ?? file).read(into: dest, at: host + UInt64(inCluster))
        case .compressed(let host, let length) where inCluster == 0 && dest.count == clusterSize:
            // A whole cluster (convert, large reads): decompress in place, no cache.
            var compressed = [UInt8](repeating: 0, count: length)
            try compressed.withUnsafeMutableBytes { try file.read(into: $0, at: host) }
            let context = "\(name): compressed cluster \(cluster) at offset \(host)"
            try compressed.withUnsafeBytes { input in
                switch header.compressionType {
                case .deflate: try Deflate.inflateExactly(input, into: dest, context: context)
                case .zstd: try Zstd.decompressExactly(input, into: dest, context: context)
                }
            }
        case .compressed(let host, let length):
            let data = try decompressedCluster(host: host, length: length, cluster: cluster)
            data.withUnsafeBytes { src in
                dest.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[inCluster..<(inCluster + dest.count)]))
            }
        case .subclusters(let host, let bitmap):
            var done = 0
            while done < dest.count {
                let pos = inCluster + done
                let sub = pos / subclusterSize
                let n = min(subclusterSize - pos % subclusterSize, dest.count - done)
                let part = UnsafeMutableRawBufferPointer(rebasing: dest[done..<(done + n)])
                if bitmap & (1 << UInt64(sub)) != 0 {
                    try (dataFile ?? file).read(into: part, at: host + UInt64(pos))
                } else if bitmap & (1 << UInt64(32 + sub)) != 0 {
                    part.initializeMemory(as: UInt8.self, repeating: 0)
                } else {
                    try readBacking(into: part, at: virtual + UInt64(done))
                }
                done += n
            }
        }
    }

    func readBacking(into dest: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        guard let backing else {
            dest.initializeMemory(as: UInt8.self, repeating: 0)
            return
        }
        let backingSize = backing.size
        if offset >= backingSize {
            dest.initializeMemory(as: UInt8.self, repeating: 0)
            return
        }
        let available = Int(min(UInt64(dest.count), backingSize - offset))
        try backing.read(into: UnsafeMutableRawBufferPointer(rebasing: dest[0..<available]), at: offset)
        if available < dest.count {
            UnsafeMutableRawBufferPointer(rebasing: dest[available...]).initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    func decompressedCluster(host: UInt64, length: Int, cluster: UInt64) throws -> [UInt8] {
        if let cached = lock.withLock({ clusterCache.get(host) }) { return cached }
        var compressed = [UInt8](repeating: 0, count: length)
        try compressed.withUnsafeMutableBytes { try file.read(into: $0, at: host) }
        let context = "\(name): compressed cluster \(cluster) at offset \(host)"
        let data: [UInt8]
        switch header.compressionType {
        case .deflate:
            data = try Deflate.inflate(compressed, framing: .raw, limit: clusterSize, exactSize: true, context: context)
        case .zstd:
            data = try Zstd.decompress(compressed, limit: clusterSize, exactSize: true, context: context)
        }
        lock.withLock { clusterCache.put(host, data) }
        return data
    }

    // MARK: - Allocation map

    public func allocationMap(offset: UInt64, length: UInt64) throws -> [AllocationExtent] {
        try checkRange(offset: offset, count: length, what: "allocation map")
        var own = ExtentList()
        let end = offset + length
        var position = offset
        let cs = UInt64(clusterSize)
        let perL2 = UInt64(l2Entries) * cs
        while position < end {
            let cluster = position >> UInt64(clusterBits)
            let l1Index = cluster / UInt64(l2Entries)
            let hasL2 = try lock.withLock { () -> Bool in
                l1Index < UInt64(l1.count) && l1[Int(l1Index)] & Self.offsetMask != 0
            }
            if !hasL2 {
                let stop = min(end, (l1Index + 1) * perL2)
                own.append(position, stop, .hole)
                position = stop
                continue
            }
            let clusterEnd = min(end, (cluster + 1) * cs)
            let map = try lock.withLock { try mapping(forCluster: cluster) }
            switch map {
            case .unallocated: own.append(position, clusterEnd, .hole)
            case .zero: own.append(position, clusterEnd, .zero)
            case .data, .compressed: own.append(position, clusterEnd, .data)
            case .subclusters(_, let bitmap):
                var p = position
                while p < clusterEnd {
                    let sub = Int((p - cluster * cs) / UInt64(subclusterSize))
                    let subEnd = min(clusterEnd, cluster * cs + UInt64((sub + 1) * subclusterSize))
                    let kind: AllocationKind = bitmap & (1 << UInt64(sub)) != 0 ? .data
                        : bitmap & (1 << UInt64(32 + sub)) != 0 ? .zero : .hole
                    own.append(p, subEnd, kind)
                    p = subEnd
                }
            }
            position = clusterEnd
        }
        guard let backing else { return own.extents }
        // Unallocated ranges show whatever the backing chain holds there.
        var merged = ExtentList()
        for extent in own.extents {
            guard extent.kind == .hole else {
                merged.append(extent.offset, extent.end, extent.kind)
                continue
            }
            let backingSize = backing.size
            if extent.offset < backingSize {
                let stop = min(extent.end, backingSize)
                for e in try backing.allocationMap(offset: extent.offset, length: stop - extent.offset) {
                    merged.append(e.offset, e.end, e.kind)
                }
                merged.append(stop, extent.end, .hole)
            } else {
                merged.append(extent.offset, extent.end, .hole)
            }
        }
        return merged.extents
    }

    public func flush() throws {
        guard !isReadOnly else { return }
        try file.sync()
    }
}

/// A cached L2 table (a reference so write-through updates do not copy it).
final class Qcow2Table: @unchecked Sendable {
    var entries: [UInt64]
    init(entries: [UInt64]) { self.entries = entries }
}

/// Builds a coalesced extent list.
struct ExtentList {
    var extents: [AllocationExtent] = []
    mutating func append(_ start: UInt64, _ stop: UInt64, _ kind: AllocationKind) {
        guard stop > start else { return }
        if let last = extents.last, last.kind == kind, last.end == start {
            extents[extents.count - 1].length += stop - start
        } else {
            extents.append(AllocationExtent(offset: start, length: stop - start, kind: kind))
        }
    }
}

extension PosixFile {
    /// Reads exactly `count` bytes; a short file is corruption, not zeros.
    func readExactly(at offset: UInt64, count: Int) throws -> [UInt8] {
        let size = try self.size()
        let (end, overflow) = offset.addingReportingOverflow(UInt64(count))
        guard !overflow, end <= size else {
            throw WispError.corrupt(path, "table", at: offset, "\(count) bytes reach past the end of the file (\(size) bytes)")
        }
        var bytes = [UInt8](repeating: 0, count: count)
        if count > 0 { try bytes.withUnsafeMutableBytes { try read(into: $0, at: offset) } }
        return bytes
    }
}

extension PosixFile {
    func write(_ bytes: [UInt8], at offset: UInt64) throws {
        try bytes.withUnsafeBytes { try write($0, at: offset) }
    }
}
