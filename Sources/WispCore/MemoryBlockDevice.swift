/// A read-only device held in memory: a few extents of bytes over a sea of zeros.
///
/// Tests and fuzz targets use it to hand readers hostile bytes without touching disk.
/// Extents let a 100 MB filesystem whose metadata fills a few hundred sectors (a btrfs or
/// XFS image made by mkfs) be described in kilobytes; everything outside them reads as
/// zeros, as a sparse file would. Where extents overlap, the later one wins.
public final class MemoryBlockDevice: BlockDevice, @unchecked Sendable {
    public struct Extent: Sendable, Equatable {
        public var offset: UInt64
        public var bytes: [UInt8]

        public init(offset: UInt64, bytes: [UInt8]) {
            self.offset = offset
            self.bytes = bytes
        }
    }

    public let name: String
    public let size: UInt64
    public var isReadOnly: Bool { true }
    /// Extents clipped to the device, in the order given.
    public let extents: [Extent]

    /// A device of exactly `bytes`.
    public convenience init(name: String, bytes: [UInt8]) {
        self.init(name: name, size: UInt64(bytes.count), extents: [Extent(offset: 0, bytes: bytes)])
    }

    /// A device of `size` bytes holding `extents`; bytes of an extent past `size` are dropped.
    public init(name: String, size: UInt64, extents: [Extent]) {
        self.name = name
        self.size = size
        self.extents = extents.compactMap { extent in
            guard extent.offset < size, !extent.bytes.isEmpty else { return nil }
            let room = size - extent.offset
            if UInt64(extent.bytes.count) <= room { return extent }
            return Extent(offset: extent.offset, bytes: Array(extent.bytes.prefix(Int(room))))
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset: offset, count: UInt64(buffer.count), what: "read")
        guard buffer.count > 0 else { return }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        // checkRange proved offset + count <= size, so neither end overflows.
        let end = offset + UInt64(buffer.count)
        for extent in extents {
            let extentEnd = extent.offset + UInt64(extent.bytes.count)
            let from = max(offset, extent.offset)
            let to = min(end, extentEnd)
            guard from < to else { continue }
            let count = Int(to - from)
            extent.bytes.withUnsafeBytes { source in
                let start = Int(from - extent.offset)
                UnsafeMutableRawBufferPointer(rebasing: buffer[Int(from - offset)..<(Int(from - offset) + count)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<(start + count)]))
            }
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        throw WispError.invalidArgument("\(name): an in-memory device is read-only")
    }

    public func flush() throws {}

    public func allocationMap(offset: UInt64, length: UInt64) throws -> [AllocationExtent] {
        try checkRange(offset: offset, count: length, what: "allocation map")
        return length == 0 ? [] : [AllocationExtent(offset: offset, length: length, kind: .data)]
    }
}
