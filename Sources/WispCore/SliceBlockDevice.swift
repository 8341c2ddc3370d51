/// A window `[start, start+size)` of another device: a partition, or a filesystem image
/// embedded in a larger file. Reads and writes outside the window are errors.
public final class SliceBlockDevice: BlockDevice, @unchecked Sendable {
    public let base: any BlockDevice
    public let start: UInt64
    public let size: UInt64
    public let name: String
    public var isReadOnly: Bool { base.isReadOnly }

    public init(base: any BlockDevice, start: UInt64, size: UInt64, name: String) throws {
        let (end, overflow) = start.addingReportingOverflow(size)
        guard !overflow, end <= base.size else {
            throw WispError.corrupt(base.name, "\(name)", at: start,
                                    "\(size) bytes reach past the end of the device (\(base.size) bytes)")
        }
        self.base = base
        self.start = start
        self.size = size
        self.name = name
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset: offset, count: UInt64(buffer.count), what: "read")
        try base.read(into: buffer, at: start + offset)
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset: offset, count: UInt64(buffer.count), what: "write")
        try base.write(buffer, at: start + offset)
    }

    public func flush() throws { try base.flush() }

    public func allocationMap(offset: UInt64, length: UInt64) throws -> [AllocationExtent] {
        try checkRange(offset: offset, count: length, what: "allocation map")
        return try base.allocationMap(offset: start + offset, length: length).map {
            AllocationExtent(offset: $0.offset - start, length: $0.length, kind: $0.kind)
        }
    }
}
