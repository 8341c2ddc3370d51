import WispCore

extension ImageConverter {
    /// Creates an empty VHD, VHDX or VDI image of `virtualSize` bytes at `path`, atomically
    /// (fixed/static images get every block, reading as zeros).
    public static func createEmpty(path: String, virtualSize: UInt64, format: ImageFormat,
                                   options: BlockMappedWriteOptions) throws {
        var convert = ConvertOptions(format: format)
        convert.blockMapped = options
        convert.workers = 1
        try ImageConverter.convert(input: EmptyDevice(size: virtualSize), to: path, options: convert)
    }
}

/// A device of zeros that reports itself as one hole.
final class EmptyDevice: BlockDevice, @unchecked Sendable {
    let name = "empty disk"
    let size: UInt64
    var isReadOnly: Bool { true }
    init(size: UInt64) { self.size = size }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try checkRange(offset: offset, count: UInt64(buffer.count), what: "read")
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
    }
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        throw WispError.invalidArgument("\(name): read-only")
    }
    func flush() throws {}
    func allocationMap(offset: UInt64, length: UInt64) throws -> [AllocationExtent] {
        length == 0 ? [] : [AllocationExtent(offset: offset, length: length, kind: .hole)]
    }
}
