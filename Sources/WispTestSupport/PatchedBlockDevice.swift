import WispCore

/// A device that reads an image file but returns some bytes changed, so corruption tests
/// need no copy of the image per seed. Shared by every reader's seeded corruption suite.
public final class PatchedBlockDevice: BlockDevice, @unchecked Sendable {
    public let base: any BlockDevice
    public let patches: [UInt64: UInt8]
    public var name: String { base.name }
    public var size: UInt64 { base.size }
    public var isReadOnly: Bool { true }

    public init(base: any BlockDevice, patches: [UInt64: UInt8]) {
        self.base = base
        self.patches = patches
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try base.read(into: buffer, at: offset)
        for (position, value) in patches where position >= offset && position < offset + UInt64(buffer.count) {
            buffer[Int(position - offset)] = value
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        throw WispError.invalidArgument("read-only test device")
    }

    public func flush() throws {}

    public func allocationMap(offset: UInt64, length: UInt64) throws -> [AllocationExtent] {
        try base.allocationMap(offset: offset, length: length)
    }
}
