import WispCore

/// Dispatch for the block-mapped formats (VHD, VHDX, VDI).
enum BlockMappedFormats {
    /// Opens `file`; `parent`: what a differencing image's absent sectors read as.
    static func open(_ file: any BlockDevice, format: ImageFormat, name: String,
                     parent: (any BlockDevice)? = nil) throws -> BlockMappedImage {
        let named = NamedDevice(file, name: name)
        switch format {
        case .vhd: return try VhdImage.open(named, parent: parent)
        case .vhdx: return try VhdxImage.open(named, parent: parent)
        case .vdi: return try VdiImage.open(named)
        default: throw WispError.unsupported(name, "\(format.rawValue) is not a block-mapped format")
        }
    }

    /// What the headers say (the block map checked against the file), for the chain
    /// resolver and `wisp image info`; nothing is refused for being differencing here.
    static func header(of probe: any BlockDevice, format: ImageFormat) throws -> BlockMappedHeader {
        switch format {
        case .vhd: return try VhdImage.parse(probe).header
        case .vhdx: return try VhdxImage.parse(probe).header
        case .vdi: return try VdiImage.parse(probe).header
        default: throw WispError.unsupported(probe.name, "\(format.rawValue) is not a block-mapped format")
        }
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
