import WispCore

/// Coalesces writes that follow each other on the device into one large write: the
/// allocator hands out blocks in order, so file data, extent blocks and directory blocks
/// arrive as long runs, and inode-table slots are filled in inode order. A write that
/// does not continue the run flushes it first.
final class Ext4WriteBatch {
    let device: any BlockDevice
    private let capacity: Int
    private let base: UnsafeMutableRawPointer
    private var start: UInt64 = 0
    private var filled = 0
    /// Bytes written to the device so far.
    private(set) var bytesWritten: UInt64 = 0

    /// The file under `device` and the device's offset in it, when known: each flushed
    /// run is handed to the kernel's writeback at once, so the final fsync finds little
    /// left to do.
    private let writeback: (file: PosixFile, offset: UInt64)?

    init(device: any BlockDevice, capacity: Int, writeback: (file: PosixFile, offset: UInt64)? = nil) {
        self.device = device
        self.capacity = capacity
        self.writeback = writeback
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 4096)
    }

    deinit { base.deallocate() }

    /// Appends to the pending run when `offset` continues it, overwrites in place when it
    /// falls inside it (an inode slot filled after its placeholder), else starts a new run.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        let end = start + UInt64(filled)
        if filled > 0 && (offset < start || offset > end) { try flush() }
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
            if filled == capacity { try flush() }
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

    func flush() throws {
        guard filled > 0 else { return }
        let n = filled
        filled = 0
        try device.write(UnsafeRawBufferPointer(start: base, count: n), at: start)
        bytesWritten += UInt64(n)
        if let writeback { writeback.file.startWriteback(offset: writeback.offset + start, length: UInt64(n)) }
    }
}
