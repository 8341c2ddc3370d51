import WispCore

/// The one entry point for opening an image file of any supported format as a
/// `BlockDevice`, backing chain included. Inputs are opened read-only unless asked.
public enum DiskImageFile {
    public static func open(_ path: String, format: ImageFormat? = nil, writable: Bool = false) throws -> any BlockDevice {
        var chain = BackingChainState()
        return try open(path, format: format, writable: writable, chain: &chain)
    }

    static func open(_ path: String, format: ImageFormat?, writable: Bool,
                     chain: inout BackingChainState) throws -> any BlockDevice {
        let detected: ImageFormat
        if let format {
            detected = format
        } else {
            detected = try ImageFormat.probe(FileBlockDevice(path: path))
        }
        switch detected {
        case .raw:
            try chain.enter(path)
            return try FileBlockDevice(path: path, writable: writable)
        case .qcow2:
            return try Qcow2Image(path: path, writable: writable, chain: &chain)
        default:
            throw WispError.unsupported(path, "\(detected.rawValue) images are not supported yet")
        }
    }

    /// The format of the image at `path`, from its magic.
    public static func probe(_ path: String) throws -> ImageFormat {
        try ImageFormat.probe(FileBlockDevice(path: path))
    }

    /// Grows the image at `path` to `newSize` bytes (qcow2 or raw). Shrinking is refused:
    /// it destroys data and is rarely what anyone wants.
    public static func resize(path: String, newSize: UInt64) throws {
        switch try probe(path) {
        case .raw:
            let file = try FileBlockDevice(path: path, writable: true)
            guard newSize >= file.size else {
                throw WispError.invalidArgument("\(path): shrinking an image is not supported (\(file.size) → \(newSize) bytes)")
            }
            try file.resize(to: newSize)
            try file.flush()
        case .qcow2:
            let image = try Qcow2Image(path: path, writable: true)
            try image.resize(to: newSize)
            try image.flush()
        case let other:
            throw WispError.unsupported(path, "resizing \(other.rawValue) images is not supported")
        }
    }
}
