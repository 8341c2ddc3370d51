/// One way images arrive (a layout directory, a layout archive, a docker archive, a
/// registry). A transport names the top document and streams blobs; `OCIPuller` does the
/// rest (index and platform selection, verification, caching) the same way for all.
protocol OCIImageTransport: Sendable {
    /// For messages: the reference as the user wrote it.
    var name: String { get }
    /// Docker archives carry layers without media types: their first bytes tell.
    var detectsLayerCompression: Bool { get }

    func root() async throws -> OCIRootDocument
    /// Streams the blob's bytes into `writer` (which verifies size and digest).
    func fetch(_ descriptor: OCIDescriptor, into writer: OCIBlobWriter, progress: @escaping @Sendable (UInt64) -> Void) async throws
}

/// Where resolution starts.
enum OCIRootDocument: Sendable {
    /// A manifest or index to fetch like any blob.
    case descriptor(OCIDescriptor)
    /// A manifest or index already in hand: a registry's answer to a manifest GET (with
    /// its digest, checked against a pinned one), or a layout's index.json itself.
    case document(bytes: [UInt8], mediaType: String?, digest: OCIDigest?)
    /// A docker archive's image, made into a manifest from its manifest.json.
    case manifest(OCIManifest)
}
