import WispCore

/// Where a base image comes from: a local file, an http(s) URL, and next a catalog name or
/// an OCI reference. Each source turns itself into a `ResolvedImage`: a local, verified
/// file that Wisp only ever reads, plus what is known about it. One implementation per
/// source, each in its own file; `ImageReference.parse` picks one for a user's string.
public protocol ImageSource: Sendable {
    /// The reference as the user spelled it, for messages and `instance.json`.
    var reference: String { get }

    /// Makes the image available locally (downloading, pulling or converting it into the
    /// cache when needed), checks `expectedDigest` when given, and describes the result.
    func resolve(_ context: ImageResolveContext) async throws -> ResolvedImage
}

/// What every source may need while resolving: the cache, the digest the user pinned, a
/// progress callback for long transfers.
public struct ImageResolveContext: Sendable {
    public var cache: ImageCacheDirectory
    /// Lowercase hex SHA-256 the image file must have (`--digest sha256:HEX`).
    public var expectedDigest: String?
    /// Bytes done and total (when known) of a long transfer.
    public var progress: (@Sendable (UInt64, UInt64?) -> Void)?
    /// One line for the user when a source starts real work ("downloading URL").
    public var announce: (@Sendable (String) -> Void)?

    public init(cache: ImageCacheDirectory, expectedDigest: String? = nil,
                progress: (@Sendable (UInt64, UInt64?) -> Void)? = nil,
                announce: (@Sendable (String) -> Void)? = nil) {
        self.cache = cache
        self.expectedDigest = expectedDigest
        self.progress = progress
        self.announce = announce
    }
}
