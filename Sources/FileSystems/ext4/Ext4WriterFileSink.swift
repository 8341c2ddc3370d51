import WispCore

/// Where one file's contents go while `Ext4Writer.addFile` runs its closure. Bytes are
/// cut into blocks as they come; each block is allocated at the writer's cursor (so a
/// file is contiguous) and queued in the writer's large sequential write, except whole
/// zero blocks, which become holes when the options say so. Only the current partial
/// block and the extent list are held. Valid only inside the closure.
public final class Ext4FileSink {
    private static let blockSize = Ext4WriterGeometry.blockSize

    private unowned let writer: Ext4Writer
    public let path: String
    let inode: UInt32
    /// The size the file was declared with.
    public let size: UInt64
    /// Bytes written (or skipped as holes) so far.
    public private(set) var bytesWritten: UInt64 = 0
    private(set) var extents: [Ext4WriterExtent] = []
    private(set) var allocatedBlocks: UInt64 = 0
    private var nextLogical: UInt64 = 0
    private let partial: UnsafeMutableRawPointer
    private var partialCount = 0
    private var closed = false

    init(writer: Ext4Writer, path: String, inode: UInt32, size: UInt64) {
        self.writer = writer
        self.path = path
        self.inode = inode
        self.size = size
        partial = UnsafeMutableRawPointer.allocate(byteCount: Self.blockSize, alignment: 16)
    }

    deinit { partial.deallocate() }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try admit(UInt64(bytes.count))
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        let count = bytes.count
        var position = 0
        if partialCount > 0 {
            let take = min(Self.blockSize - partialCount, count)
            (partial + partialCount).copyMemory(from: source, byteCount: take)
            partialCount += take
            position = take
            if partialCount == Self.blockSize {
                try commitBlock(UnsafeRawPointer(partial))
                partialCount = 0
            }
        }
        while count - position >= Self.blockSize {
            try commitBlock(source + position)
            position += Self.blockSize
        }
        if position < count {
            partial.copyMemory(from: source + position, byteCount: count - position)
            partialCount = count - position
        }
        bytesWritten += UInt64(count)
    }

    /// `count` bytes of zeros that are not stored: whole blocks of them stay holes
    /// whatever `zeroBlocksAsHoles` says.
    public func writeHole(_ count: UInt64) throws {
        try admit(count)
        var remaining = count
        if partialCount > 0 {
            let take = Int(min(UInt64(Self.blockSize - partialCount), remaining))
            (partial + partialCount).initializeMemory(as: UInt8.self, repeating: 0, count: take)
            partialCount += take
            remaining -= UInt64(take)
            if partialCount == Self.blockSize {
                try commitBlock(UnsafeRawPointer(partial))
                partialCount = 0
            }
        }
        nextLogical += remaining / UInt64(Self.blockSize)
        let tail = Int(remaining % UInt64(Self.blockSize))
        if tail > 0 {
            partial.initializeMemory(as: UInt8.self, repeating: 0, count: tail)
            partialCount = tail
        }
        bytesWritten += count
    }

    private func admit(_ count: UInt64) throws {
        guard !closed else {
            throw WispError.invalidArgument("\(path): the file's contents were already finished; write inside the addFile closure")
        }
        guard count <= size - bytesWritten else {
            throw WispError.invalidArgument("\(path): more than the declared \(size) bytes written")
        }
    }

    /// Ends the contents: the last partial block is padded and stored.
    func close() throws {
        guard !closed else { return }
        guard bytesWritten == size else {
            closed = true
            throw WispError.invalidArgument("\(path): \(bytesWritten) bytes written, but the file was declared with \(size)")
        }
        if partialCount > 0 {
            (partial + partialCount).initializeMemory(as: UInt8.self, repeating: 0, count: Self.blockSize - partialCount)
            try commitBlock(UnsafeRawPointer(partial))
            partialCount = 0
        }
        closed = true
    }

    func abandon() { closed = true }

    private func commitBlock(_ block: UnsafeRawPointer) throws {
        defer { nextLogical += 1 }
        if writer.options.zeroBlocksAsHoles && Self.isZero(block) { return }
        guard let run = writer.allocator.allocateRun(upTo: 1, owner: inode) else {
            throw Ext4WriterAllocator.full(path, needed: 1, free: 0)
        }
        Ext4WriterExtentTree.append(&extents, logical: UInt32(nextLogical), physical: run.lowerBound, count: 1)
        allocatedBlocks += 1
        try writer.failing {
            try writer.data.write(UnsafeRawBufferPointer(start: block, count: Self.blockSize),
                                  at: run.lowerBound * UInt64(Self.blockSize))
        }
    }

    private static func isZero(_ block: UnsafeRawPointer) -> Bool {
        var accumulated: UInt64 = 0
        var offset = 0
        while offset < blockSize {
            accumulated |= block.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                | block.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)
                | block.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self)
                | block.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self)
            if accumulated != 0 { return false }
            offset += 32
        }
        return true
    }
}
