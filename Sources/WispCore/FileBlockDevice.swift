/// A plain file (or host block device) seen as a `BlockDevice`: a raw image. Sparse-aware:
/// the allocation map comes from SEEK_DATA/SEEK_HOLE.
public final class FileBlockDevice: BlockDevice, @unchecked Sendable {
    public let file: PosixFile
    public let name: String
    public var isReadOnly: Bool { file.isReadOnly }
    private let sizeLock = LockedValue<UInt64>(0)

    public init(path: String, writable: Bool = false) throws {
        file = try PosixFile(path: path, mode: writable ? .readWrite : .readOnly)
        name = path
        try sizeLock.withLock { $0 = try file.size() }
    }

    public init(file: PosixFile) throws {
        self.file = file
        name = file.displayPath
        try sizeLock.withLock { $0 = try file.size() }
    }

    public var size: UInt64 { sizeLock.withLock { $0 } }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset: offset, count: UInt64(buffer.count), what: "read")
        try file.read(into: buffer, at: offset)
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset: offset, count: UInt64(buffer.count), what: "write")
        try file.write(buffer, at: offset)
    }

    public func flush() throws { try file.sync() }

    /// Grows (or shrinks) the file; new space is a hole.
    public func resize(to newSize: UInt64) throws {
        try file.truncate(to: newSize)
        sizeLock.withLock { $0 = newSize }
    }

    public func allocationMap(offset: UInt64, length: UInt64) throws -> [AllocationExtent] {
        try checkRange(offset: offset, count: length, what: "allocation map")
        return try file.dataExtents(offset: offset, length: length)
    }
}
