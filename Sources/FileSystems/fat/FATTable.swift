import WispCore

/// A contiguous stretch of clusters of one chain.
struct FATClusterRun: Sendable, Equatable {
    var first: UInt32
    var count: UInt32
}

/// The file allocation table, read lazily in chunks and cached, and the cluster chains it
/// describes, turned into runs of contiguous clusters. Chains are bounds-checked entry by
/// entry and can never be longer than the volume has clusters, so a loop ends in an error.
final class FATTable: @unchecked Sendable {
    let device: any BlockDevice
    let boot: FATBootSector
    private static let chunkSize: UInt64 = 64 << 10
    private let chunks = LockedValue<[UInt64: [UInt8]]>([:])
    private struct RunsKey: Hashable { var start: UInt32; var limit: UInt64? }
    private let runsCache = LockedValue<[RunsKey: [FATClusterRun]]>([:])

    init(device: any BlockDevice, boot: FATBootSector) {
        self.device = device
        self.boot = boot
    }

    private func byte(at index: UInt64) throws -> UInt8 {
        let chunkIndex = index / Self.chunkSize
        if let chunk = chunks.withLock({ $0[chunkIndex] }) {
            return chunk[Int(index % Self.chunkSize)]
        }
        let start = chunkIndex * Self.chunkSize
        let length = min(Self.chunkSize, boot.fatBytes - start)
        let chunk = try device.read(at: boot.fatOffset + start, count: Int(length))
        chunks.withLock { $0[chunkIndex] = chunk }
        return chunk[Int(index % Self.chunkSize)]
    }

    /// The raw FAT entry for `cluster` (< firstInvalidCluster, checked by callers).
    func entry(_ cluster: UInt32) throws -> UInt32 {
        let n = UInt64(cluster)
        switch boot.variant {
        case .fat12:
            let at = n + n / 2
            let pair = UInt16(try byte(at: at)) | UInt16(try byte(at: at + 1)) << 8
            return UInt32(n & 1 == 1 ? pair >> 4 : pair & 0xFFF)
        case .fat16:
            return UInt32(try byte(at: n * 2)) | UInt32(try byte(at: n * 2 + 1)) << 8
        case .fat32:
            var value: UInt32 = 0
            for i in 0..<UInt64(4) { value |= UInt32(try byte(at: n * 4 + i)) << (8 * UInt32(i)) }
            return value & 0x0FFF_FFFF
        }
    }

    private var endOfChainMinimum: UInt32 {
        switch boot.variant {
        case .fat12: return 0xFF8
        case .fat16: return 0xFFF8
        case .fat32: return 0x0FFF_FFF8
        }
    }

    /// The chain starting at `start` as runs, following at most `limit` clusters (nil: to
    /// the end). `what` names the owner for error messages.
    func runs(from start: UInt32, limit: UInt64? = nil, what: String) throws -> [FATClusterRun] {
        let key = RunsKey(start: start, limit: limit)
        if let cached = runsCache.withLock({ $0[key] }) { return cached }
        var runs: [FATClusterRun] = []
        var cluster = start
        var walked: UInt64 = 0
        let eoc = endOfChainMinimum
        let maxClusters = UInt64(boot.clusterCount)
        while true {
            guard cluster >= 2, cluster < boot.firstInvalidCluster else {
                throw WispError.corrupt(device.name, "FAT chain of \(what)", at: boot.fatOffset,
                                        "cluster \(cluster) is outside the volume's clusters 2-\(boot.firstInvalidCluster - 1)")
            }
            if let last = runs.last, last.first &+ last.count == cluster {
                runs[runs.count - 1].count += 1
            } else {
                runs.append(FATClusterRun(first: cluster, count: 1))
            }
            walked += 1
            if let limit, walked >= limit { break }
            guard walked <= maxClusters else {
                throw WispError.corrupt(device.name, "FAT chain of \(what)", at: boot.fatOffset,
                                        "the chain is longer than the volume's \(maxClusters) clusters: it loops")
            }
            let next = try entry(cluster)
            if next >= eoc { break }
            guard next >= 2, next < eoc - 1 else {
                let kind = next == 0 ? "a free cluster" : (next == eoc - 1 ? "a bad cluster" : "reserved value \(next)")
                throw WispError.corrupt(device.name, "FAT chain of \(what)", at: boot.fatOffset,
                                        "cluster \(cluster) links to \(kind)")
            }
            cluster = next
        }
        // Streaming reads ask for the same chain again and again; keep a bounded cache.
        runsCache.withLock { cache in
            if cache.count >= 512 { cache.removeAll() }
            cache[key] = runs
        }
        return runs
    }
}
