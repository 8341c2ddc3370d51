import DiskImage

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

    public init(path: String, format: ImageFormat, sha256: String? = nil, origin: ImageOrigin) {
        self.path = path
        self.format = format
        self.sha256 = sha256
        self.origin = origin
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

    /// True for images that came from outside this machine: they may not refer to any
    /// other file (backing files, external data files, extents, parent locators).
    public var isFromOutside: Bool {
        switch self {
        case .localFile: false
        case .download, .container: true
        }
    }
}
