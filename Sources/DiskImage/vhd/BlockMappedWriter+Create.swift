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
