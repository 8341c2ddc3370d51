import WispCore

extension VmdkImage {
    /// Creates an empty single-file VMDK of `virtualSize` bytes (`wisp image create -f vmdk`).
    public static func create(path: String, virtualSize: UInt64, options: VmdkCreateOptions = VmdkCreateOptions()) throws {
        var convert = ConvertOptions(format: .vmdk)
        convert.vmdk = options
        try ImageConverter.convert(input: EmptyDevice(size: virtualSize), to: path, options: convert)
    }
}
