import WispCore

/// Writes: allocate on write, overwrite in place, copy-on-write from the backing chain
/// (or from a compressed or zero cluster) for partial cluster writes, and growing.
extension Qcow2Image {
    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard !isReadOnly else { throw WispError.invalidArgument("\(name): opened read-only") }
        try checkRange(offset: offset, count: UInt64(buffer.count), what: "write")
        writeLock.lock()
        defer { writeLock.unlock() }
        var done = 0
        let mask = UInt64(clusterSize - 1)
        while done < buffer.count {
            let position = offset + UInt64(done)
            let cluster = position >> UInt64(clusterBits)
            let inCluster = Int(position & mask)
            let n = min(clusterSize - inCluster, buffer.count - done)
            try writeCluster(cluster, inCluster: inCluster,
                             data: UnsafeRawBufferPointer(rebasing: buffer[done..<(done + n)]))
            done += n
        }
    }

    private func writeCluster(_ cluster: UInt64, inCluster: Int, data: UnsafeRawBufferPointer) throws {
        let cs = clusterSize
        let (entry, bitmap, l2Offset) = try lock.withLock { try l2Entry(forCluster: cluster) }
        let map = try lock.withLock { try decode(entry: entry, bitmap: bitmap, cluster: cluster, l2Offset: l2Offset) }
        let ownedHost: UInt64? = {
            // A host cluster we alone reference (COPIED) can be written in place.
            guard entry & Self.copiedFlag != 0, entry & Self.compressedFlag == 0 else { return nil }
            let host = entry & Self.offsetMask
            return host == 0 ? nil : host
        }()
        if let host = ownedHost {
            let fullyAllocated: Bool = {
                switch map {
                case .data: return true
                case .subclusters(_, let b): return b & 0xFFFF_FFFF == 0xFFFF_FFFF
                default: return false  // preallocated zero cluster
                }
            }()
            if fullyAllocated {
                try file.write(data, at: host + UInt64(inCluster))
                return
            }
            // Zero or partly allocated: materialise the whole cluster, then mark it data.
            var content = try clusterContent(cluster, map: map, skipIfFull: data.count == cs)
            content.withUnsafeMutableBytes { dst in
                UnsafeMutableRawBufferPointer(rebasing: dst[inCluster..<(inCluster + data.count)]).copyMemory(from: data)
            }
            try file.write(content, at: host)
            try lock.withLock { try setL2Entry(cluster: cluster, entry: host | Self.copiedFlag) }
            return
        }
        // Copy-on-write into a fresh cluster.
        var content = try clusterContent(cluster, map: map, skipIfFull: data.count == cs)
        content.withUnsafeMutableBytes { dst in
            UnsafeMutableRawBufferPointer(rebasing: dst[inCluster..<(inCluster + data.count)]).copyMemory(from: data)
        }
        try lock.withLock {
            try ensureL2Table(forCluster: cluster)
            let host = try allocateClusters(1)
            try file.write(content, at: host)
            try setL2Entry(cluster: cluster, entry: host | Self.copiedFlag)
            // Drop the reference the old mapping held.
            switch map {
            case .compressed(let old, let length):
                let start = old & ~UInt64(511)
                let sectors = (UInt64(length) + (old & 511) + 511) / 512
                try releaseRange(offset: start, length: sectors * 512)
            case .data(let old):
                try releaseRange(offset: old, length: UInt64(clusterSize))
            case .subclusters(let old, _) where old != 0:
                try releaseRange(offset: old, length: UInt64(clusterSize))
            default:
                break
            }
        }
    }

    /// The current virtual content of a cluster (what a reader sees), or zeros when the
    /// caller is about to overwrite all of it.
    private func clusterContent(_ cluster: UInt64, map: Mapping, skipIfFull: Bool) throws -> [UInt8] {
        var content = [UInt8](repeating: 0, count: clusterSize)
        if skipIfFull { return content }
        let start = cluster << UInt64(clusterBits)
        let length = Int(min(UInt64(clusterSize), header.size - start))
        try content.withUnsafeMutableBytes { buf in
            try readMapped(map, cluster: cluster, inCluster: 0,
                           into: UnsafeMutableRawBufferPointer(rebasing: buf[0..<length]), virtual: start)
        }
        return content
    }

    /// Makes sure an L2 table (owned by this image) maps `cluster`. Caller holds `lock`.
    func ensureL2Table(forCluster cluster: UInt64) throws {
        let l1Index = Int(cluster / UInt64(l2Entries))
        guard l1Index < l1.count else {
            throw WispError.corrupt(name, "L1 table", "cluster \(cluster) lies beyond the L1 table (\(l1.count) entries)")
        }
        let existing = l1[l1Index]
        if existing & Self.offsetMask != 0 {
            guard existing & Self.copiedFlag != 0 else {
                throw WispError.unsupported(name, "L2 table \(l1Index) is shared (snapshots); writing to it is not supported")
            }
            return
        }
        let l2 = try allocateClusters(1)
        let zeros = [UInt8](repeating: 0, count: clusterSize)
        try file.write(zeros, at: l2)
        l2Cache.put(l2, Qcow2Table(entries: [UInt64](repeating: 0, count: clusterSize / 8)))
        let value = l2 | Self.copiedFlag
        l1[l1Index] = value
        var bytes = [UInt8](repeating: 0, count: 8)
        bytes.putBE64(value, at: 0)
        try file.write(bytes, at: header.l1TableOffset + UInt64(l1Index) * 8)
    }

    /// Points `cluster` at a fully allocated host cluster. Caller holds `lock`.
    func setL2Entry(cluster: UInt64, entry: UInt64) throws {
        let l1Index = Int(cluster / UInt64(l2Entries))
        let l2Offset = l1[l1Index] & Self.offsetMask
        let table = try l2Table(at: l2Offset, l1Index: l1Index)
        let index = Int(cluster % UInt64(l2Entries))
        if extendedL2 {
            let bitmap: UInt64 = 0x0000_0000_FFFF_FFFF
            table.entries[index * 2] = entry
            table.entries[index * 2 + 1] = bitmap
            var bytes = [UInt8](repeating: 0, count: 16)
            bytes.putBE64(entry, at: 0)
            bytes.putBE64(bitmap, at: 8)
            try file.write(bytes, at: l2Offset + UInt64(index * 16))
        } else {
            table.entries[index] = entry
            var bytes = [UInt8](repeating: 0, count: 8)
            bytes.putBE64(entry, at: 0)
            try file.write(bytes, at: l2Offset + UInt64(index * 8))
        }
    }

    /// Grows the virtual size; the L1 table moves to the end of the file if it must grow
    /// past the clusters it occupies.
    public func resize(to newSize: UInt64) throws {
        guard !isReadOnly else { throw WispError.invalidArgument("\(name): opened read-only") }
        writeLock.lock()
        defer { writeLock.unlock() }
        try lock.withLock {
            guard newSize >= header.size else {
                throw WispError.invalidArgument("\(name): shrinking an image is not supported (\(header.size) → \(newSize) bytes)")
            }
            guard newSize <= Qcow2Header.maxVirtualSize else {
                throw WispError.invalidArgument("\(name): \(newSize) bytes is larger than qcow2 supports")
            }
            let needed = Qcow2Header.l1EntriesNeeded(size: newSize, clusterBits: header.clusterBits,
                                                     l2EntrySize: header.l2EntrySize)
            guard needed * 8 <= Qcow2Header.maxL1Bytes else {
                throw WispError.invalidArgument("\(name): \(newSize) bytes needs an L1 table larger than \(Qcow2Header.maxL1Bytes >> 20) MiB; use larger clusters")
            }
            let cs = UInt64(clusterSize)
            let capacity = (UInt64(header.l1Size) * 8 + cs - 1) / cs * cs / 8
            if needed > UInt64(l1.count) && needed > capacity {
                let clusters = Int((needed * 8 + cs - 1) / cs)
                let oldOffset = header.l1TableOffset
                let oldClusters = (UInt64(header.l1Size) * 8 + cs - 1) / cs
                let newOffset = try allocateClusters(clusters)
                var bytes = [UInt8](repeating: 0, count: clusters * clusterSize)
                for (i, e) in l1.enumerated() { bytes.putBE64(e, at: i * 8) }
                try file.write(bytes, at: newOffset)
                try file.sync()
                l1 += [UInt64](repeating: 0, count: Int(needed) - l1.count)
                header.l1TableOffset = newOffset
                header.l1Size = UInt32(needed)
                header.size = newSize
                try writeSizeFields()
                if oldClusters > 0 && oldOffset != 0 {
                    try releaseRange(offset: oldOffset, length: oldClusters * cs)
                }
            } else {
                if needed > UInt64(l1.count) {
                    l1 += [UInt64](repeating: 0, count: Int(needed) - l1.count)
                    header.l1Size = UInt32(needed)
                }
                header.size = newSize
                try writeSizeFields()
            }
        }
    }

    /// Writes size, L1 size and L1 offset (header bytes 24..<48) in one write.
    private func writeSizeFields() throws {
        var b = [UInt8](repeating: 0, count: 24)
        b.putBE64(header.size, at: 0)
        b.putBE32(header.cryptMethod, at: 8)
        b.putBE32(header.l1Size, at: 12)
        b.putBE64(header.l1TableOffset, at: 16)
        try file.write(b, at: 24)
        try file.sync()
    }
}
