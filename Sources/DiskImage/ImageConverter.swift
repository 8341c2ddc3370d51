import Foundation
import WispCompression
import WispCore

/// Options for `ImageConverter`, in qemu-img's terms.
public struct ConvertOptions: Sendable {
    public var format: ImageFormat = .qcow2
    /// Compress qcow2 clusters with this algorithm (qemu-img convert -c).
    public var compression: Qcow2CompressionType?
    public var clusterSize: Int = 65536
    /// For `-O vmdk`: subformat, adapter type, hardware version.
    public var vmdk = VmdkCreateOptions()
    /// Options for VHD, VHDX and VDI output.
    public var blockMapped = BlockMappedWriteOptions()
    /// Worker threads reading (and compressing). Twice the cores: reads block on I/O and
    /// decompression, so extra threads keep every core busy.
    public var workers: Int = max(4, 2 * ProcessInfo.processInfo.activeProcessorCount)
    /// Called now and then with (bytes done, total bytes) of the virtual disk.
    public var progress: (@Sendable (UInt64, UInt64) -> Void)?

    public init(format: ImageFormat = .qcow2, compression: Qcow2CompressionType? = nil, clusterSize: Int = 65536) {
        self.format = format
        self.compression = compression
        self.clusterSize = clusterSize
    }
}

/// Converts any readable image (backing chain flattened) into raw or qcow2, sparse:
/// ranges the source's allocation map calls zero or hole are never read, and blocks that
/// read as zeros are not written. Workers read (and compress) batches in parallel; for
/// qcow2 one writer lays them out in order, at most a few batches behind, so memory
/// stays bounded whatever the image size. The output appears atomically.
public enum ImageConverter {
    /// Bytes per batch of work.
    static func batchSize(clusterSize: Int) -> Int { max(clusterSize, 2 << 20) }

    public static func convert(input: any BlockDevice, to path: String, options: ConvertOptions) throws {
        let blockMapped: Set<ImageFormat> = [.vhd, .vhdx, .vdi]
        guard options.format == .raw || options.format == .qcow2 || options.format == .vmdk || blockMapped.contains(options.format) else {
            throw WispError.unsupported(path, "writing \(options.format.rawValue) images is not supported (use raw, qcow2, vmdk, vhd, vhdx or vdi)")
        }
        if options.compression != nil && options.format != .qcow2 {
            throw WispError.invalidArgument("compression needs qcow2 output (-O qcow2)")
        }
        let output = try AtomicOutput(path: path, expectedSize: try spaceNeeded(input, options: options))
        do {
            switch options.format {
            case .raw: try convertToRaw(input, output: output.file, options: options)
            case .vmdk: try VmdkWriter.write(input, to: output.file, fileName: String(path.split(separator: "/").last ?? "disk.vmdk"),
                                             options: options.vmdk, workers: options.workers, progress: options.progress)
            case .vhd, .vhdx, .vdi:
                try BlockMappedWriter.write(input, output: output.file, format: options.format, options: options.blockMapped,
                                            workers: options.workers, progress: options.progress)
            default: try convertToQcow2(input, output: output.file, options: options)
            }
            try output.commit()
        } catch {
            output.discard()
            throw error
        }
    }

    /// About what an uncompressed raw or qcow2 output takes on disk: the input's allocated
    /// data, plus qcow2's tables (an L2 entry and a refcount per cluster, with room to
    /// spare). Checked against free space before the output is made; nil (no check) where
    /// compression makes the size unknowable in advance.
    static func spaceNeeded(_ input: any BlockDevice, options: ConvertOptions) throws -> UInt64? {
        guard options.compression == nil, options.format == .raw || options.format == .qcow2 else { return nil }
        var data: UInt64 = 0
        for extent in try input.allocationMap() where extent.kind == .data {
            data = data.addingReportingOverflow(extent.length).overflow ? UInt64.max : data + extent.length
        }
        guard options.format == .qcow2 else { return data }
        let tables = data / 4096 + (256 << 10)
        return data.addingReportingOverflow(tables).overflow ? UInt64.max : data + tables
    }

    /// One unit of work: a virtual range and the parts of it that hold data.
    struct Batch: Sendable {
        var offset: UInt64
        var length: Int
        var dataRanges: [Range<UInt64>]
    }

    static func plan(_ input: any BlockDevice, batchSize: Int) throws -> [Batch] {
        var batches: [Batch] = []
        let b = UInt64(batchSize)
        for extent in try input.allocationMap() where extent.kind == .data {
            var p = extent.offset
            while p < extent.end {
                let batchStart = p / b * b
                let stop = min(extent.end, batchStart + b)
                if let last = batches.last, last.offset == batchStart {
                    batches[batches.count - 1].dataRanges.append(p..<stop)
                } else {
                    let length = Int(min(b, input.size - batchStart))
                    batches.append(Batch(offset: batchStart, length: length, dataRanges: [p..<stop]))
                }
                p = stop
            }
        }
        return batches
    }

    /// Reads a batch: data ranges from the source, zeros elsewhere.
    static func read(_ batch: Batch, from input: any BlockDevice, into buffer: UnsafeMutableRawBufferPointer) throws {
        var filled = 0
        for r in batch.dataRanges {
            let start = Int(r.lowerBound - batch.offset)
            if start > filled {
                UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<start]).initializeMemory(as: UInt8.self, repeating: 0)
            }
            let end = Int(r.upperBound - batch.offset)
            try input.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[start..<end]), at: r.lowerBound)
            filled = end
        }
        if filled < batch.length {
            UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<batch.length]).initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    /// Runs `body(workerIndex)` on `count` threads and rethrows the first error.
    static func runWorkers(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws {
        let failure = LockedValue<Error?>(nil)
        let group = DispatchGroup()
        for w in 0..<count {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                do { try body(w) } catch { failure.withLock { if $0 == nil { $0 = error } } }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        group.wait()
        if let error = failure.withLock({ $0 }) { throw error }
    }

    // MARK: raw

    static func convertToRaw(_ input: any BlockDevice, output: PosixFile, options: ConvertOptions) throws {
        try output.truncate(to: input.size)
        let batchSize = batchSize(clusterSize: 65536)
        let batches = try plan(input, batchSize: batchSize)
        let next = LockedValue(0)
        let done = LockedValue<UInt64>(0)
        let total = input.size
        let progress = options.progress
        try runWorkers(options.workers) { _ in
            var buffer = [UInt8](repeating: 0, count: batchSize)
            while true {
                let index = next.withLock { i -> Int in defer { i += 1 }; return i }
                guard index < batches.count else { return }
                let batch = batches[index]
                try buffer.withUnsafeMutableBytes { buf in
                    let view = UnsafeMutableRawBufferPointer(rebasing: buf[0..<batch.length])
                    try read(batch, from: input, into: view)
                    try writeNonZeroRuns(UnsafeRawBufferPointer(view), to: output, at: batch.offset)
                }
                output.startWriteback(offset: batch.offset, length: UInt64(batch.length))
                let soFar = done.withLock { $0 += UInt64(batch.length); return $0 }
                progress?(min(soFar, total), total)
            }
        }
        try output.sync()
    }

    /// Writes the 4 KiB blocks of `data` that are not all zero (the file is sparse).
    static func writeNonZeroRuns(_ data: UnsafeRawBufferPointer, to file: PosixFile, at offset: UInt64) throws {
        let block = 4096
        var runStart: Int?
        var p = 0
        while p < data.count {
            let n = min(block, data.count - p)
            let zero = isZero(UnsafeRawBufferPointer(rebasing: data[p..<(p + n)]))
            if zero, let s = runStart {
                try file.write(UnsafeRawBufferPointer(rebasing: data[s..<p]), at: offset + UInt64(s))
                runStart = nil
            } else if !zero && runStart == nil {
                runStart = p
            }
            p += n
        }
        if let s = runStart {
            try file.write(UnsafeRawBufferPointer(rebasing: data[s..<data.count]), at: offset + UInt64(s))
        }
    }

    static func isZero(_ data: UnsafeRawBufferPointer) -> Bool {
        let words = data.count / 8
        var i = 0
        while i < words {
            if data.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) != 0 { return false }
            i += 1
        }
        for j in (words * 8)..<data.count where data[j] != 0 { return false }
        return true
    }

    // MARK: qcow2

    /// What a worker hands the writer for one batch.
    struct PreparedBatch: @unchecked Sendable {
        enum Cluster {
            case plain(UInt64, Range<Int>)
            case compressed(UInt64, [UInt8])
        }
        var buffer: [UInt8]
        var clusters: [Cluster]
        var length: Int
    }

    /// Hands prepared batches to the writer in order; workers stay at most `window`
    /// batches ahead so memory is bounded.
    final class OrderedQueue: @unchecked Sendable {
        private let condition = NSCondition()
        private var ready: [Int: PreparedBatch] = [:]
        private var nextToWrite = 0
        private var nextToTake = 0
        private var failed = false
        let count: Int
        let window: Int

        init(count: Int, window: Int) {
            self.count = count
            self.window = window
        }

        /// The next batch index for a worker, or nil when done or failed.
        func take() -> Int? {
            condition.lock()
            defer { condition.unlock() }
            while !failed && nextToTake < count && nextToTake >= nextToWrite + window { condition.wait() }
            guard !failed, nextToTake < count else { return nil }
            defer { nextToTake += 1 }
            return nextToTake
        }

        func put(_ index: Int, _ batch: PreparedBatch) {
            condition.lock()
            ready[index] = batch
            condition.broadcast()
            condition.unlock()
        }

        /// The next batch in order, or nil when all are written or work failed.
        func nextForWriter() -> PreparedBatch? {
            condition.lock()
            defer { condition.unlock() }
            while !failed && nextToWrite < count && ready[nextToWrite] == nil { condition.wait() }
            guard !failed, nextToWrite < count, let batch = ready.removeValue(forKey: nextToWrite) else { return nil }
            nextToWrite += 1
            condition.broadcast()
            return batch
        }

        func fail() {
            condition.lock()
            failed = true
            condition.broadcast()
            condition.unlock()
        }
    }

    static func convertToQcow2(_ input: any BlockDevice, output: PosixFile, options: ConvertOptions) throws {
        let layout = try Qcow2Layout(virtualSize: input.size, clusterSize: options.clusterSize, extendedL2: false)
        let cs = options.clusterSize
        let batchSize = batchSize(clusterSize: cs)
        let batches = try plan(input, batchSize: batchSize)
        let bytesPerL2 = UInt64(cs / 8) * UInt64(cs)
        var l1Indices: [Int] = []
        // Clusters the data ranges touch: a tight bound on what the writer can store.
        var plannedClusters: UInt64 = 0
        var lastCluster: UInt64?
        for batch in batches {
            for r in batch.dataRanges {
                let first = r.lowerBound / UInt64(cs), last = (r.upperBound - 1) / UInt64(cs)
                plannedClusters += last - first + 1 - (lastCluster == first ? 1 : 0)
                lastCluster = last
                for index in Int(r.lowerBound / bytesPerL2)...Int((r.upperBound - 1) / bytesPerL2)
                where l1Indices.last != index {
                    l1Indices.append(index)
                }
            }
        }
        let writer = Qcow2StreamWriter(file: output, layout: layout, compressionType: options.compression ?? .deflate,
                                       expectedL1Indices: l1Indices,
                                       maxDataClusters: plannedClusters)
        let queue = OrderedQueue(count: batches.count, window: options.workers * 2)
        let compression = options.compression
        let total = input.size
        let progress = options.progress

        // Batch buffers are recycled: a fresh 2 MiB array per batch costs a page fault per
        // 4 KiB and a memset, which made uncompressed output several times slower.
        let pool = BufferPool(limit: options.workers * 3 + 2)
        let workerFailure = LockedValue<Error?>(nil)
        let group = DispatchGroup()
        for _ in 0..<options.workers {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                do {
                    let compressor = try compression.map {
                        try ClusterCompressor(kind: $0 == .zstd ? .zstd : .deflate)
                    }
                    while let index = queue.take() {
                        let batch = batches[index]
                        var buffer = pool.take(count: batch.length)
                        try buffer.withUnsafeMutableBytes { try read(batch, from: input, into: $0) }
                        var clusters: [PreparedBatch.Cluster] = []
                        try buffer.withUnsafeBytes { buf in
                            var p = 0
                            while p < batch.length {
                                let n = min(cs, batch.length - p)
                                let slice = UnsafeRawBufferPointer(rebasing: buf[p..<(p + n)])
                                let cluster = (batch.offset + UInt64(p)) / UInt64(cs)
                                if !isZero(slice) {
                                    if let compressor, n == cs, let packed = try compressor.compress(slice, limit: cs - 1) {
                                        clusters.append(.compressed(cluster, packed))
                                    } else {
                                        clusters.append(.plain(cluster, p..<(p + n)))
                                    }
                                }
                                p += n
                            }
                        }
                        // Compressed batches need not keep their source bytes.
                        let keep = clusters.contains { if case .plain = $0 { return true }; return false }
                        if !keep { pool.give(buffer) }
                        queue.put(index, PreparedBatch(buffer: keep ? buffer : [], clusters: clusters, length: batch.length))
                    }
                } catch {
                    workerFailure.withLock { if $0 == nil { $0 = error } }
                    queue.fail()
                }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }

        var writeError: Error?
        var written: UInt64 = 0
        do {
            while let prepared = queue.nextForWriter() {
                for cluster in prepared.clusters {
                    switch cluster {
                    case .plain(let index, let range):
                        try prepared.buffer.withUnsafeBytes { buf in
                            try writer.writeCluster(index, data: UnsafeRawBufferPointer(rebasing: buf[range]))
                        }
                    case .compressed(let index, let bytes):
                        try writer.writeCompressedCluster(index, compressed: bytes)
                    }
                }
                if !prepared.buffer.isEmpty { pool.give(prepared.buffer) }
                written += UInt64(prepared.length)
                progress?(min(written, total), total)
            }
        } catch {
            writeError = error
            queue.fail()
        }
        group.wait()
        if let error = workerFailure.withLock({ $0 }) { throw error }
        if let writeError { throw writeError }
        try writer.finish()
        try output.sync()
    }
}
