/// A reference to a blob: its media type, digest and size (image-spec descriptor).
public struct OCIDescriptor: Sendable, Hashable, Codable {
    public var mediaType: String
    public var digest: OCIDigest
    public var size: Int64
    public var platform: OCIPlatform?
    public var annotations: [String: String]?
    public var urls: [String]?

    public init(mediaType: String, digest: OCIDigest, size: Int64, platform: OCIPlatform? = nil,
                annotations: [String: String]? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.platform = platform
        self.annotations = annotations
    }

    /// `org.opencontainers.image.ref.name`: the tag of a manifest in an image layout.
    public var refName: String? { annotations?["org.opencontainers.image.ref.name"] }

    /// Docker's attestation manifests (buildx provenance and SBOMs) sit in indexes beside
    /// the images with an `unknown/unknown` platform; they are not images.
    public var isAttestation: Bool {
        annotations?["vnd.docker.reference.type"] == "attestation-manifest"
            || (platform?.os == "unknown" && platform?.architecture == "unknown")
    }
}
