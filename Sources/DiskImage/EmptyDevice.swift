import WispCore

/// A device of `size` bytes that holds nothing: what an empty image is converted from.
final class EmptyDevice: BlockDevice, @unchecked Sendable {
    let size: UInt64
    var name: String { "empty disk" }
    var isReadOnly: Bool { true }
    init(size: UInt64) { self.size = size }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset: offset, count: UInt64(buffer.count), what: "read")
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
    }

    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        throw WispError.invalidArgument("empty disk: read-only")
    }

    func flush() throws {}

    func allocationMap(offset: UInt64, length: UInt64) throws -> [AllocationExtent] {
        try checkRange(offset: offset, count: length, what: "allocation map")
        return length == 0 ? [] : [AllocationExtent(offset: offset, length: length, kind: .hole)]
    }
}
