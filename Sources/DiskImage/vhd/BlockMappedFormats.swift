import WispCore

/// Dispatch for the block-mapped formats (VHD, VHDX, VDI).
enum BlockMappedFormats {
    static func open(_ file: any BlockDevice, format: ImageFormat, name: String) throws -> BlockMappedImage {
        let named = NamedDevice(file, name: name)
        switch format {
        case .vhd: return try VhdImage.open(named)
        case .vhdx: return try VhdxImage.open(named)
        case .vdi: return try VdiImage.open(named)
        default: throw WispError.unsupported(name, "\(format.rawValue) is not a block-mapped format")
        }
    }

    /// The virtual size the headers give, for the chain resolver (differencing images
    /// are refused here, before anything is opened).
    static func virtualSize(of probe: any BlockDevice, format: ImageFormat) throws -> UInt64 {
        try open(probe, format: format, name: probe.name).size
    }
}

/// A device under another name, so messages name the file as the user gave it.
final class NamedDevice: BlockDevice, @unchecked Sendable {
    let inner: any BlockDevice
    let name: String
    var size: UInt64 { inner.size }
    var isReadOnly: Bool { inner.isReadOnly }
    init(_ inner: any BlockDevice, name: String) { self.inner = inner; self.name = name }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws { try inner.read(into: buffer, at: offset) }
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws { try inner.write(buffer, at: offset) }
    func flush() throws { try inner.flush() }
    func allocationMap(offset: UInt64, length: UInt64) throws -> [AllocationExtent] {
        try inner.allocationMap(offset: offset, length: length)
    }
}
