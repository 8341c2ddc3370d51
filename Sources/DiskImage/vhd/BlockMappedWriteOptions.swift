/// Options for writing VHD, VHDX and VDI images, in qemu-img's terms.
public struct BlockMappedWriteOptions: Sendable, Equatable {
    /// Every block stored (VHD subformat=fixed, VHDX subformat=fixed, VDI static=on).
    public var preallocated: Bool = false
    /// VHD: keep the exact size in current_size instead of rounding to a CHS geometry
    /// (qemu-img's force_size=on).
    public var forceSize: Bool = false
    /// VHD for Azure: fixed, size rounded up to a whole MiB, exact current_size.
    public var azure: Bool = false
    /// VHDX block size (1 MiB to 256 MiB, a power of two); nil: 32 MiB.
    public var blockSize: UInt64?
    /// VHDX log size (a multiple of 1 MiB); nil: 1 MiB.
    public var logSize: UInt64?

    public init(preallocated: Bool = false, forceSize: Bool = false, azure: Bool = false,
                blockSize: UInt64? = nil, logSize: UInt64? = nil) {
        self.preallocated = preallocated
        self.forceSize = forceSize
        self.azure = azure
        self.blockSize = blockSize
        self.logSize = logSize
    }

    /// The virtual size an Azure VHD gets for `size`: rounded up to a whole MiB (Azure
    /// refuses VHDs whose size is not a multiple of 1 MiB).
    public static func azureSize(_ size: UInt64) -> UInt64 { (size + (1 << 20) - 1) / (1 << 20) * (1 << 20) }
}
