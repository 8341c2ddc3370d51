import Foundation
import WispCore

/// Writes VHD, VHDX and VDI images from any readable device. Blocks that read as zeros
/// are not stored (unless preallocated); allocated blocks are appended in order. Workers
/// read and test blocks in parallel; one writer lays them out.
enum BlockMappedWriter {
    /// Where the format wants things: the caller's layout callbacks fill in headers.
    struct Plan {
        var virtualSize: UInt64
        var blockSize: UInt64
        /// File offset of the first data block.
        var dataStart: UInt64
        /// Bytes before each block's data (a VHD sector bitmap) and their content.
        var blockPrefix: [UInt8]
        /// Each stored block takes this many bytes (prefix and data, aligned).
        var blockStride: UInt64
        /// Preallocated images whose data area is exactly the virtual size (fixed VHD).
        var exactDataLength = false
        /// Called with each block's data offset, or nil when the block is not stored;
        /// returns the bytes to write before the first block and after the last.
        var finish: (_ offsets: [UInt64?], _ fileEnd: UInt64) throws -> (head: [(UInt64, [UInt8])], tail: [UInt8])
    }

    static func write(_ input: any BlockDevice, output: PosixFile, format: ImageFormat, options: BlockMappedWriteOptions,
                      workers: Int, progress: (@Sendable (UInt64, UInt64) -> Void)?) throws {
        var options = options
        // Azure takes fixed VHDs only.
        if options.azure { options.preallocated = true }
        let plan: Plan
        switch format {
        case .vhd: plan = try VhdWriter.plan(size: input.size, options: options)
        case .vhdx: plan = try VhdxWriter.plan(size: input.size, options: options)
        case .vdi: plan = try VdiWriter.plan(size: input.size, options: options)
        default: throw WispError.unsupported(output.path, "\(format.rawValue) is not a block-mapped format")
        }
        let blockCount = Int((plan.virtualSize + plan.blockSize - 1) / plan.blockSize)
        let bs = Int(plan.blockSize)
        let batches = try ImageConverter.plan(input, batchSize: bs)
        var offsets = [UInt64?](repeating: nil, count: blockCount)
        var next = plan.dataStart
        if options.preallocated {
            for i in 0..<blockCount {
                offsets[i] = plan.dataStart + UInt64(i) * plan.blockStride + UInt64(plan.blockPrefix.count)
            }
            next = plan.dataStart + (plan.exactDataLength ? plan.virtualSize : UInt64(blockCount) * plan.blockStride)
            try output.truncate(to: next)
            if !plan.blockPrefix.isEmpty {
                for i in 0..<blockCount {
                    try output.write(plan.blockPrefix, at: plan.dataStart + UInt64(i) * plan.blockStride)
                }
            }
        }
        let queue = ImageConverter.OrderedQueue(count: batches.count, window: workers * 2)
        let pool = BufferPool(limit: workers * 3 + 2)
        let failure = LockedValue<Error?>(nil)
        let group = DispatchGroup()
        for _ in 0..<workers {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                do {
                    while let index = queue.take() {
                        let batch = batches[index]
                        var buffer = pool.take(count: batch.length)
                        try buffer.withUnsafeMutableBytes { try ImageConverter.read(batch, from: input, into: $0) }
                        let zero = buffer.withUnsafeBytes { ImageConverter.isZero($0) }
                        if zero { pool.give(buffer); buffer = [] }
                        queue.put(index, ImageConverter.PreparedBatch(buffer: buffer, clusters: [], length: batch.length))
                    }
                } catch {
                    failure.withLock { if $0 == nil { $0 = error } }
                    queue.fail()
                }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        var writeError: Error?
        var done: UInt64 = 0
        var batchIndex = 0
        do {
            while let prepared = queue.nextForWriter() {
                let batch = batches[batchIndex]
                batchIndex += 1
                done += UInt64(prepared.length)
                progress?(min(done, plan.virtualSize), plan.virtualSize)
                guard !prepared.buffer.isEmpty else { continue }
                let block = Int(batch.offset / plan.blockSize)
                if offsets[block] == nil {
                    if !plan.blockPrefix.isEmpty { try output.write(plan.blockPrefix, at: next) }
                    offsets[block] = next + UInt64(plan.blockPrefix.count)
                    next += plan.blockStride
                }
                guard let at = offsets[block] else { continue }
                try prepared.buffer.withUnsafeBytes { buf in
                    try ImageConverter.writeNonZeroRuns(UnsafeRawBufferPointer(rebasing: buf[0..<prepared.length]), to: output, at: at)
                }
                pool.give(prepared.buffer)
            }
        } catch {
            writeError = error
            queue.fail()
        }
        group.wait()
        if let error = failure.withLock({ $0 }) { throw error }
        if let writeError { throw writeError }
        let (head, tail) = try plan.finish(offsets, next)
        for (at, bytes) in head { try output.write(bytes, at: at) }
        if tail.isEmpty {
            try output.truncate(to: next)
        } else {
            try output.truncate(to: next)
            try output.write(tail, at: next)
        }
        try output.sync()
    }

    static func randomUUID() -> [UInt8] {
        var b = (0..<16).map { _ in UInt8.random(in: 0...255) }
        b[6] = b[6] & 0x0F | 0x40
        b[8] = b[8] & 0x3F | 0x80
        return b
    }
}
