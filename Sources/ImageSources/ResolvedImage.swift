import DiskImage
import WispCore

/// A base image ready to be read: a local file Wisp never writes, with its format read from
/// its bytes and where it came from.
public struct ResolvedImage: Sendable, Equatable, Codable {
    /// The local file (inside the cache for downloaded images).
    public var path: String
    /// Read from the file's magic, never guessed from its name.
    public var format: ImageFormat
    /// Lowercase hex SHA-256 of the file, when it was computed (downloads always are).
    public var sha256: String?
    public var origin: ImageOrigin
    /// Set when the image is the boot disk of an OVA or a Vagrant box, unpacked into the
    /// cache: the archive's other disks and the machine it describes.
    public var archive: MachineArchiveImage?
    /// For a catalog image: the concrete build it resolved to (`debian-13` → 20250814-2204).
    public var build: String?

    public init(path: String, format: ImageFormat, sha256: String? = nil, origin: ImageOrigin,
                archive: MachineArchiveImage? = nil) {
        self.path = path
        self.format = format
        self.sha256 = sha256
        self.origin = origin
        self.archive = archive
    }
}

/// Where an image came from, which decides how far it is trusted: a file the user named on
/// this machine may refer to other local files (a backing chain the user made), an image
/// from anywhere else must be self-contained.
public enum ImageOrigin: Sendable, Equatable, Codable {
    case localFile
    case download(url: String)
    /// A disk Wisp built from a container image (by manifest digest).
    case container(reference: String, digest: String)
    /// A disk unpacked from an OVA or Vagrant box (`reference` is the archive as the user
    /// named it): whoever made the archive chose its contents, so it is treated as outside.
    case machineArchive(reference: String)

    /// True for images that came from outside this machine: they may not refer to any
    /// other file (backing files, external data files, extents, parent locators).
    public var isFromOutside: Bool {
        switch self {
        case .localFile: false
        case .download, .container, .machineArchive: true
        }
    }
}

extension ResolvedImage {
    /// The boot disk of an imported OVA or box, named `reference` by the user.
    init(archive: MachineArchiveImage, reference: String) throws {
        let boot = archive.disks[0]
        self.init(path: boot, format: try ImageFormat.probe(try FileBlockDevice(path: boot)), sha256: nil,
                  origin: .machineArchive(reference: reference), archive: archive)
    }

    /// This image, or when it is an OVA or a Vagrant box, its boot disk from the cache.
    func importingArchive(_ context: ImageResolveContext, reference: String) throws -> ResolvedImage {
        guard let archive = try MachineArchiveCache(cache: context.cache, announce: context.announce)
            .importIfArchive(path, sha256: sha256) else { return self }
        return try ResolvedImage(archive: archive, reference: reference)
    }
}
