import Dispatch
import WispCore

/// Coalesces writes that follow each other on the device into one large write: the
/// allocator hands out blocks in order, so file data, extent blocks and directory blocks
/// arrive as long runs, and inode-table slots are filled in inode order. A write that
/// does not continue the run flushes it first.
///
/// With `background`, a full run is written by a second thread while the caller fills
/// the other of two buffers, so producing the data (decompressing a layer, reading a
/// source image) and writing it use both cores. At most one write is in flight; its
/// error surfaces at the next flush.
final class Ext4WriteBatch {
    let device: any BlockDevice
    private let capacity: Int
    private var buffers: [UnsafeMutableRawPointer]
    private var current = 0
    private var base: UnsafeMutableRawPointer
    private var start: UInt64 = 0
    private var filled = 0
    /// The file under `device` and the device's offset in it, when known: each flushed
    /// run is handed to the kernel's writeback at once, so the final fsync finds little
    /// left to do.
    private let writeback: (file: PosixFile, offset: UInt64)?
    private let queue: DispatchQueue?
    private let inFlight = DispatchGroup()
    private let failure = LockedValue<WispError?>(nil)

    init(device: any BlockDevice, capacity: Int, writeback: (file: PosixFile, offset: UInt64)? = nil,
         background: Bool = false) {
        self.device = device
        self.capacity = capacity
        self.writeback = writeback
        buffers = (0..<(background ? 2 : 1)).map { _ in
            UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 4096)
        }
        base = buffers[0]
        queue = background ? DispatchQueue(label: "ext4-writer-output") : nil
    }

    deinit {
        inFlight.wait()
        for buffer in buffers { buffer.deallocate() }
    }

    /// Appends to the pending run when `offset` continues it, overwrites in place when it
    /// falls inside it (an inode slot filled after its placeholder), else starts a new run.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        let end = start + UInt64(filled)
        if filled > 0 && (offset < start || offset > end) { try submit() }
        var source = bytes
        var position = offset
        if filled > 0 && offset < end {
            let within = Int(offset - start)
            let take = min(source.count, filled - within)
            if let from = source.baseAddress {
                (base + within).copyMemory(from: from, byteCount: take)
            }
            source = UnsafeRawBufferPointer(rebasing: source[take...])
            position += UInt64(take)
        }
        while !source.isEmpty {
            if filled == 0 { start = position }
            let take = min(source.count, capacity - filled)
            if let from = source.baseAddress {
                (base + filled).copyMemory(from: from, byteCount: take)
            }
            filled += take
            position += UInt64(take)
            source = UnsafeRawBufferPointer(rebasing: source[take...])
            if filled == capacity { try submit() }
        }
    }

    func write(_ bytes: [UInt8], at offset: UInt64) throws {
        try bytes.withUnsafeBytes { try write($0, at: offset) }
    }

    /// Zeros over `[offset, offset+count)`, for targets that may hold old bytes.
    func writeZeros(at offset: UInt64, count: UInt64) throws {
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        var done: UInt64 = 0
        while done < count {
            let n = Int(min(UInt64(zeros.count), count - done))
            try zeros.withUnsafeBytes { try write(UnsafeRawBufferPointer(rebasing: $0[0..<n]), at: offset + done) }
            done += UInt64(n)
        }
    }

    /// Writes the pending run and waits until everything queued is on the device.
    func flush() throws {
        try submit()
        try drain()
    }

    /// Sends the pending run to the device: in the background when there is a second
    /// buffer to fill meanwhile, else right here.
    private func submit() throws {
        guard filled > 0 else { return }
        let job = Job(device: device, buffer: UnsafeRawBufferPointer(start: base, count: filled), offset: start,
                      writeback: writeback)
        filled = 0
        guard let queue else {
            try job.run()
            return
        }
        // The other buffer is free once its write (the only one in flight) is done.
        try drain()
        inFlight.enter()
        let failure = self.failure
        let group = inFlight
        queue.async {
            defer { group.leave() }
            do {
                try job.run()
            } catch {
                failure.withLock { $0 = $0 ?? (error as? WispError ?? WispError(.io, "\(job.device.name): \(error)")) }
            }
        }
        current = (current + 1) % buffers.count
        base = buffers[current]
    }

    private func drain() throws {
        inFlight.wait()
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// One run to write; the buffer stays untouched until the write is done.
    private struct Job: @unchecked Sendable {
        let device: any BlockDevice
        let buffer: UnsafeRawBufferPointer
        let offset: UInt64
        let writeback: (file: PosixFile, offset: UInt64)?

        func run() throws {
            try device.write(buffer, at: offset)
            if let writeback {
                writeback.file.startWriteback(offset: writeback.offset + offset, length: UInt64(buffer.count))
            }
        }
    }
}
