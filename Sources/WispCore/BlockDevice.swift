/// What an extent of a device holds, as far as the device knows without reading it.
public enum AllocationKind: String, Sendable, Equatable, Codable {
    /// Bytes are stored and must be read.
    case data
    /// Known to read as zeros (a qcow2 zero cluster, a written-zero range).
    case zero
    /// Nothing is allocated here; reads return zeros (or, for an overlay, whatever its
    /// backing image holds: the overlay's own map reports the merged view).
    case hole
}

public struct AllocationExtent: Sendable, Equatable {
    public var offset: UInt64
    public var length: UInt64
    public var kind: AllocationKind

    public init(offset: UInt64, length: UInt64, kind: AllocationKind) {
        self.offset = offset
        self.length = length
        self.kind = kind
    }

    public var end: UInt64 { offset + length }
}

/// Random-access storage: a file, a disk image format, a partition, a backing chain.
/// Every reader in Wisp takes one of these, never a path, so that a filesystem inside a
/// partition inside a qcow2 overlay is read exactly like a raw file.
///
/// Implementations must be safe to call from several tasks at once (reads at least):
/// `pread`-style positional I/O has no shared cursor.
public protocol BlockDevice: AnyObject, Sendable {
    /// Human-readable name used in error messages ("disk.qcow2", "disk.qcow2 partition 1").
    var name: String { get }
    /// Size in bytes of the virtual device.
    var size: UInt64 { get }
    var isReadOnly: Bool { get }

    /// Fills `buffer` with the bytes at `offset`. Reading past `size` is an error; a read
    /// that ends exactly at `size` is fine.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws

    /// Writes `buffer` at `offset`. Devices opened read-only throw.
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws

    /// Makes written data durable.
    func flush() throws

    /// Describes `range` as consecutive extents covering it exactly, coalesced where
    /// neighbours have the same kind. Devices that know nothing report one `.data` extent.
    func allocationMap(offset: UInt64, length: UInt64) throws -> [AllocationExtent]
}

extension BlockDevice {
    /// Reads `count` bytes at `offset`, bounds-checked against the device size.
    public func read(at offset: UInt64, count: Int) throws -> [UInt8] {
        guard count >= 0 else { throw WispError.invalidArgument("\(name): negative read length") }
        try checkRange(offset: offset, count: UInt64(count), what: "read")
        var bytes = [UInt8](repeating: 0, count: count)
        if count > 0 {
            try bytes.withUnsafeMutableBytes { try read(into: $0, at: offset) }
        }
        return bytes
    }

    /// Throws unless `[offset, offset+count)` lies inside the device.
    public func checkRange(offset: UInt64, count: UInt64, what: String) throws {
        let (end, overflow) = offset.addingReportingOverflow(count)
        guard !overflow, end <= size else {
            throw WispError.corrupt(name, what, at: offset,
                                    "\(count) bytes reach past the end of the device (\(size) bytes)")
        }
    }

    public func write(_ bytes: [UInt8], at offset: UInt64) throws {
        try bytes.withUnsafeBytes { try write($0, at: offset) }
    }

    /// The whole device as one allocation map.
    public func allocationMap() throws -> [AllocationExtent] {
        try allocationMap(offset: 0, length: size)
    }
}
