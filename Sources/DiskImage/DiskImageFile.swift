import WispCore

/// The one entry point for opening an image file of any supported format as a
/// `BlockDevice`, backing chain included. Inputs are opened read-only unless asked.
public enum DiskImageFile {
    public static func open(_ path: String, format: ImageFormat? = nil, writable: Bool = false) throws -> any BlockDevice {
        let file = try FileBlockDevice(path: path, writable: writable)
        let detected = try format ?? ImageFormat.probe(file)
        switch detected {
        case .raw:
            return file
        default:
            throw WispError.unsupported(path, "\(detected.rawValue) images are not readable yet")
        }
    }
}
