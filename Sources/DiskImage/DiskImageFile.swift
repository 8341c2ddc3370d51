import WispCore

/// The one entry point for opening an image file of any supported format as a
/// `BlockDevice`, backing chain included. Inputs are opened read-only unless asked.
///
/// Every file besides the image itself (backing files, external data files) is opened
/// only after `BackingChain.resolve` has checked it against an `ExternalReferencePolicy`.
public enum DiskImageFile {
    /// Opens the image at `path` with its chain, checked under `policy`. `format`: when the
    /// caller knows it (never re-probed: a raw image that looks like qcow2 stays raw).
    /// The default policy lets a chain use files in the image's own directory only; images
    /// from outside Wisp take `.selfContained`.
    public static func open(_ path: String, format: ImageFormat? = nil, writable: Bool = false,
                            policy: ExternalReferencePolicy = .confinedToImageDirectory) throws -> any BlockDevice {
        if format == nil, let disk = try OvaArchive.openDiskIfOva(path) { return disk }
        return try open(try BackingChain.resolve(path: path, format: format, policy: policy, writable: writable))
    }

    /// Opens exactly the files of a resolved chain (the top writable when it was resolved
    /// so), refusing any that changed since they were checked.
    public static func open(_ chain: BackingChain) throws -> any BlockDevice {
        try chain.openMembers(from: 0)
    }

    /// The format of the image at `path`, from its magic.
    public static func probe(_ path: String) throws -> ImageFormat {
        try ImageFormat.probe(FileBlockDevice(path: path))
    }

    /// Grows the image at `path` to `newSize` bytes (qcow2 or raw). Shrinking is refused:
    /// it destroys data and is rarely what anyone wants.
    public static func resize(path: String, newSize: UInt64,
                              policy: ExternalReferencePolicy = .confinedToImageDirectory) throws {
        let chain = try BackingChain.resolve(path: path, policy: policy, writable: true)
        switch chain.top.format {
        case .raw:
            let file = try FileBlockDevice(file: try chain.openFile(of: chain.top))
            guard newSize >= file.size else {
                throw WispError.invalidArgument("\(path): shrinking an image is not supported (\(file.size) → \(newSize) bytes)")
            }
            try file.resize(to: newSize)
            try file.flush()
        case .qcow2:
            guard let image = try open(chain) as? Qcow2Image else {
                throw WispError.unsupported(path, "resizing this image is not supported")
            }
            try image.resize(to: newSize)
            try image.flush()
        case let other:
            throw WispError.unsupported(path, "resizing \(other.rawValue) images is not supported")
        }
    }
}
