/// The media types a pull meets: OCI and Docker v2 schema 2 manifests, indexes, configs
/// and layers.
public enum OCIMediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"

    /// Sent as `Accept` on manifest requests, most wanted first.
    public static let acceptedManifests = [ociIndex, ociManifest, dockerManifestList, dockerManifest]

    public static func isIndex(_ type: String) -> Bool { type == ociIndex || type == dockerManifestList }
    public static func isManifest(_ type: String) -> Bool { type == ociManifest || type == dockerManifest }

    /// How a layer's bytes are compressed, read from its media type (OCI, Docker, and the
    /// non-distributable variants).
    public static func layerCompression(_ type: String) -> LayerCompression? {
        switch type {
        case "application/vnd.oci.image.layer.v1.tar",
             "application/vnd.oci.image.layer.nondistributable.v1.tar",
             "application/vnd.docker.image.rootfs.diff.tar":
            return .uncompressed
        case "application/vnd.oci.image.layer.v1.tar+gzip",
             "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
             "application/vnd.docker.image.rootfs.diff.tar.gzip",
             "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
            return .gzip
        case "application/vnd.oci.image.layer.v1.tar+zstd",
             "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
             "application/vnd.docker.image.rootfs.diff.tar.zstd":
            return .zstd
        default:
            return nil
        }
    }
}

/// A layer's compression. `.detect` is for docker-archive layers, which come without a
/// media type: the first bytes decide.
public enum LayerCompression: String, Sendable, Equatable, Codable {
    case uncompressed, gzip, zstd, detect
}
