import WispCore

/// What `BackingChain.resolve` learned from a VMDK member: its descriptor and, for each
/// extent that lives in a file, that file after the chain's policy allowed it.
public struct VmdkLayout: Sendable, Equatable {
    public let descriptor: VmdkDescriptor
    /// The file is itself one hosted sparse extent (monolithicSparse, streamOptimized):
    /// its extents are the file, whatever names its embedded descriptor records.
    public let isMonolithicSparse: Bool
    /// Parallel to `descriptor.extents`; nil for ZERO extents and for the image itself.
    public let extentFiles: [ExtentFile?]

    public struct ExtentFile: Sendable, Equatable {
        public let recordedName: String
        public let name: String
        public let path: String
        public let identity: BackingChain.FileIdentity
    }

    /// qemu-img's "create-type" (subformat).
    public var subformat: String { descriptor.createType ?? (isMonolithicSparse ? "monolithicSparse" : "unknown") }
    public var virtualSize: UInt64 { descriptor.virtualSectors &* 512 }

    /// Each extent's file, opened once however many extents share it (nil for a ZERO extent
    /// or one that names no file); `own` is the descriptor's file, which a monolithic
    /// sparse image's one extent is. Only the files the chain checked are opened.
    func openExtentFiles(own: any BlockDevice) throws -> [(any BlockDevice)?] {
        var opened: [String: any BlockDevice] = [:]
        return try descriptor.extents.indices.map { i -> (any BlockDevice)? in
            if isMonolithicSparse { return own }
            guard let f = extentFiles[i] else { return nil }
            if let already = opened[f.path] { return already }
            let device = NamedDevice(try FileBlockDevice(file: try BackingChain.openChecked(
                path: f.path, name: f.name, identity: f.identity, type: .regular, writable: false)), name: f.name)
            opened[f.path] = device
            return device
        }
    }
}
