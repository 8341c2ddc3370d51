import Foundation
import WispCompression
import WispCore

/// Writes a single-file VMDK (monolithicSparse or streamOptimized) from any device, with
/// the converter's pattern: workers read (and for streamOptimized deflate) batches of
/// grains in parallel, one writer appends them in order. Only grains holding non-zero
/// bytes are stored. Grain tables are kept in memory (4 bytes per 64 KiB of disk) and
/// written once at the end.
enum VmdkWriter {
    static let grainSize = 65536
    static let grainSectors = UInt64(grainSize / 512)
    static let gtesPerGT = 512
    static let descriptorSectors: UInt64 = 20

    struct Geometry {
        let capacitySectors: UInt64
        let grains: Int
        let tables: Int
        var gdSectors: UInt64 { (UInt64(tables) * 4 + 511) / 512 }
        static let gtSectors = UInt64(gtesPerGT * 4 / 512)

        init(size: UInt64) throws {
            capacitySectors = (size + 511) / 512
            let g = (capacitySectors + grainSectors - 1) / grainSectors
            guard g <= UInt64(UInt32.max) / 2, capacitySectors <= UInt64(1) << 41 else {
                throw WispError.unsupported("vmdk", "disks over 1 PiB cannot be written as VMDK")
            }
            grains = Int(g)
            tables = (grains + gtesPerGT - 1) / gtesPerGT
        }
    }

    static func write(_ input: any BlockDevice, to output: PosixFile, fileName: String, options: VmdkCreateOptions,
                      workers: Int, progress: (@Sendable (UInt64, UInt64) -> Void)?) throws {
        let geometry = try Geometry(size: input.size)
        let stream = options.subformat == .streamOptimized
        let cid = UInt32.random(in: 1..<0xFFFF_FFFE)
        var descriptor = Array(options.descriptor(fileName: fileName, sectors: geometry.capacitySectors, cid: cid).utf8)
        guard descriptor.count <= Int(descriptorSectors) * 512 else {
            throw WispError.invalidArgument("\(fileName): the VMDK descriptor does not fit in \(descriptorSectors) sectors (file name too long)")
        }
        descriptor += [UInt8](repeating: 0, count: Int(descriptorSectors) * 512 - descriptor.count)

        // monolithicSparse: header, descriptor, redundant GD and GTs, GD and GTs, grains.
        let metadataSectors = geometry.gdSectors + UInt64(geometry.tables) * Geometry.gtSectors
        let rgdSector: UInt64 = 1 + descriptorSectors
        let gdSector = rgdSector + metadataSectors
        let overhead: UInt64 = stream ? grainSectors
            : (gdSector + metadataSectors + grainSectors - 1) / grainSectors * grainSectors

        var table = [UInt32](repeating: 0, count: geometry.tables * gtesPerGT)
        var next = overhead
        let batchSize = ImageConverter.batchSize(clusterSize: grainSize)
        let batches = try ImageConverter.plan(input, batchSize: batchSize)
        let queue = ImageConverter.OrderedQueue(count: batches.count, window: workers * 2)
        let pool = BufferPool(limit: workers * 3 + 2)
        let workerFailure = LockedValue<Error?>(nil)
        let group = DispatchGroup()
        for _ in 0..<workers {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                do {
                    let compressor = stream ? try ZlibCompressor() : nil
                    while let index = queue.take() {
                        let batch = batches[index]
                        var buffer = pool.take(count: batch.length)
                        try buffer.withUnsafeMutableBytes { try ImageConverter.read(batch, from: input, into: $0) }
                        var grains: [ImageConverter.PreparedBatch.Cluster] = []
                        try buffer.withUnsafeBytes { buf in
                            var p = 0
                            while p < batch.length {
                                let n = min(grainSize, batch.length - p)
                                let slice = UnsafeRawBufferPointer(rebasing: buf[p..<(p + n)])
                                let grain = (batch.offset + UInt64(p)) / UInt64(grainSize)
                                if !ImageConverter.isZero(slice) {
                                    if let compressor {
                                        grains.append(.compressed(grain, try streamGrain(slice, grain: grain, compressor)))
                                    } else {
                                        grains.append(.plain(grain, p..<(p + n)))
                                    }
                                }
                                p += n
                            }
                        }
                        if stream { pool.give(buffer); buffer = [] }
                        queue.put(index, ImageConverter.PreparedBatch(buffer: buffer, clusters: grains, length: batch.length))
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
        let total = input.size
        do {
            let padding = [UInt8](repeating: 0, count: grainSize)
            while let prepared = queue.nextForWriter() {
                for grain in prepared.clusters {
                    switch grain {
                    case .plain(let index, let range):
                        try prepared.buffer.withUnsafeBytes { buf in
                            try output.write(UnsafeRawBufferPointer(rebasing: buf[range]), at: next * 512)
                        }
                        if range.count < grainSize {
                            // The disk's last grain is stored whole, as readers expect.
                            try padding.withUnsafeBytes {
                                try output.write(UnsafeRawBufferPointer(rebasing: $0[range.count...]), at: next * 512 + UInt64(range.count))
                            }
                        }
                        table[Int(index)] = UInt32(next)
                        next += grainSectors
                    case .compressed(let index, let bytes):
                        try output.write(bytes, at: next * 512)
                        table[Int(index)] = UInt32(next)
                        next += UInt64(bytes.count / 512)
                    }
                    guard next < UInt64(UInt32.max) else {
                        throw WispError.unsupported(fileName, "a sparse VMDK extent holds at most 2 TiB of stored grains")
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

        if stream {
            try finishStream(output, geometry: geometry, table: table, next: next, descriptor: descriptor, options: options)
        } else {
            try finishSparse(output, geometry: geometry, table: table, rgdSector: rgdSector, gdSector: gdSector,
                             overhead: overhead, end: next, descriptor: descriptor)
        }
        try output.sync()
    }

    /// A grain marker (LBA, size) and the zlib stream, padded to whole sectors.
    static func streamGrain(_ data: UnsafeRawBufferPointer, grain: UInt64, _ compressor: ZlibCompressor) throws -> [UInt8] {
        var whole: [UInt8]?
        if data.count < grainSize {
            var padded = [UInt8](repeating: 0, count: grainSize)
            padded.withUnsafeMutableBytes { $0.copyMemory(from: data) }
            whole = padded
        }
        let compressed = try whole.map { w in try w.withUnsafeBytes { try compressor.compress($0) } } ?? compressor.compress(data)
        let length = (12 + compressed.count + 511) / 512 * 512
        var out = [UInt8](repeating: 0, count: length)
        put64(grain * grainSectors, into: &out, at: 0)
        put32(UInt32(compressed.count), into: &out, at: 8)
        out.withUnsafeMutableBytes { buf in
            compressed.withUnsafeBytes { buf.baseAddress!.advanced(by: 12).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
        return out
    }

    static func put32(_ v: UInt32, into b: inout [UInt8], at o: Int) {
        for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }

    static func put64(_ v: UInt64, into b: inout [UInt8], at o: Int) {
        for i in 0..<8 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }

    static func encode(_ entries: ArraySlice<UInt32>, sectors: UInt64) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Int(sectors * 512))
        for (i, e) in entries.enumerated() { put32(e, into: &b, at: i * 4) }
        return b
    }

    static func finishSparse(_ output: PosixFile, geometry: Geometry, table: [UInt32], rgdSector: UInt64, gdSector: UInt64,
                             overhead: UInt64, end: UInt64, descriptor: [UInt8]) throws {
        let header = VmdkSparseHeader(capacity: geometry.capacitySectors, grainSectors: grainSectors,
                                      flags: [.validNewlineTest, .redundantGrainTable], descriptorOffset: 1,
                                      descriptorSectors: descriptorSectors, rgdOffset: rgdSector, gdOffset: gdSector,
                                      overheadSectors: overhead, compressAlgorithm: 0)
        try output.truncate(to: end * 512)
        try output.write(header.encoded(), at: 0)
        try output.write(descriptor, at: 512)
        for directoryStart in [rgdSector, gdSector] {
            let firstTable = directoryStart + geometry.gdSectors
            let directory = (0..<geometry.tables).map { UInt32(firstTable + UInt64($0) * Geometry.gtSectors) }
            try output.write(encode(directory[...], sectors: geometry.gdSectors), at: directoryStart * 512)
            try output.write(encode(table[...], sectors: UInt64(geometry.tables) * Geometry.gtSectors), at: firstTable * 512)
        }
    }

    static func marker(sectors: UInt64, type: UInt32) -> [UInt8] {
        var m = [UInt8](repeating: 0, count: 512)
        put64(sectors, into: &m, at: 0)
        put32(type, into: &m, at: 12)
        return m
    }

    static func finishStream(_ output: PosixFile, geometry: Geometry, table: [UInt32], next: UInt64,
                             descriptor: [UInt8], options: VmdkCreateOptions) throws {
        var position = next
        var directory: [UInt32] = []
        for t in 0..<geometry.tables {
            try output.write(marker(sectors: Geometry.gtSectors, type: 1), at: position * 512)
            position += 1
            directory.append(UInt32(position))
            let entries = table[(t * gtesPerGT)..<((t + 1) * gtesPerGT)]
            try output.write(encode(entries, sectors: Geometry.gtSectors), at: position * 512)
            position += Geometry.gtSectors
        }
        try output.write(marker(sectors: geometry.gdSectors, type: 2), at: position * 512)
        position += 1
        let gdSector = position
        try output.write(encode(directory[...], sectors: geometry.gdSectors), at: position * 512)
        position += geometry.gdSectors
        var header = VmdkSparseHeader(capacity: geometry.capacitySectors, grainSectors: grainSectors,
                                      flags: [.validNewlineTest, .compressed, .markers], descriptorOffset: 1,
                                      descriptorSectors: descriptorSectors, rgdOffset: 0, gdOffset: gdSector,
                                      overheadSectors: grainSectors, compressAlgorithm: 1)
        try output.write(marker(sectors: 1, type: 3), at: position * 512)
        position += 1
        try output.write(header.encoded(), at: position * 512)
        position += 1
        try output.write([UInt8](repeating: 0, count: 512), at: position * 512)
        position += 1
        header.gdOffset = VmdkSparseHeader.gdAtEnd
        try output.write(header.encoded(), at: 0)
        try output.write(descriptor, at: 512)
        try output.truncate(to: position * 512)
    }
}
