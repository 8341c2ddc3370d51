import WispCore

/// One image of the catalog (Catalog/catalog.yaml or a user's images.d file): where its
/// release directory is, how its file and checksum file are named, and how it is signed.
/// `{NAME}` placeholders are filled from the architecture's values, `release`, `build` and
/// `file`; see the comment at the top of catalog.yaml.
public struct CatalogEntry: Sendable, Equatable, Codable {
    public var name: String
    public var aliases: [String]
    public var distribution: String
    public var release: String
    public var variant: String
    /// Wisp's architecture name (x86_64, aarch64) → the values its URLs use.
    public var arches: [String: [String: String]]
    public var root: String
    public var directory: String
    /// Glob of the build subdirectory `{build}` stands for; the newest match wins.
    public var build: String?
    public var file: String
    public var checksumFile: String
    public var algorithm: ChecksumAlgorithm
    public var signature: CatalogSignature?
    /// The file the entry came from ("built-in" for the embedded catalog).
    public var source: String

    public var architectures: [String] { arches.keys.sorted() }
}

public enum ChecksumAlgorithm: String, Sendable, Codable, CaseIterable {
    case sha256, sha512

    var hexLength: Int { self == .sha256 ? 64 : 128 }
}

/// How a distribution signs its checksum file: the file itself (`clearsigned`, Fedora's and
/// Alma's CHECKSUM) or a separate signature (`detached`, Ubuntu's SHA256SUMS.gpg).
public struct CatalogSignature: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable { case clearsigned, detached }
    public var kind: Kind
    public var file: String?
    public var keyring: String
}

/// How far a downloaded image is trusted, as shown to the user and recorded in the cache.
public enum ImageTrust: String, Sendable, Codable {
    /// The checksum file's OpenPGP signature was checked by gpgv with the distribution's key.
    case signed = "signed checksum (gpgv)"
    /// The image matched its line in the checksum file; the checksum file is not signed, or
    /// its keyring is not installed.
    case checksumOnly = "checksum only"
}
