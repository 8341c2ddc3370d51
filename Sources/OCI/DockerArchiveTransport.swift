import WispCore

/// `docker-archive:FILE[:REPO:TAG]`: `docker save` output. Its manifest.json lists each
/// image's config and layer files; legacy archives name layers `<id>/layer.tar`, Docker
/// 25+ archives are also OCI layouts and name them `blobs/sha256/<hex>`. Layers carry no
/// descriptor, so their digests are computed from the archive (which the user named on
/// this machine) and each is still checked against the config's diff_ids.
struct DockerArchiveTransport: OCIImageTransport {
    let storage: any LayoutStorage
    let image: String?
    let name: String
    var detectsLayerCompression: Bool { true }
    private let members = LockedValue<[OCIDigest: String]>([:])

    init(storage: any LayoutStorage, image: String?, name: String) {
        self.storage = storage
        self.image = image
        self.name = name
    }

    struct Entry: Decodable {
        var Config: String
        var RepoTags: [String]?
        var Layers: [String]
    }

    func root() async throws -> OCIRootDocument {
        guard let bytes = try storage.readDocument("manifest.json") else {
            throw WispError.notFound("\(name): not a docker archive (no manifest.json)")
        }
        let entries = try OCIJSON.decode([Entry].self, bytes, source: name, what: "manifest.json")
        let tags = entries.flatMap { $0.RepoTags ?? [] }
        let entry: Entry
        if let image {
            let wanted = Self.normalise(image)
            guard let match = entries.first(where: { ($0.RepoTags ?? []).contains { $0 == image || Self.normalise($0) == wanted } }) else {
                throw WispError.notFound("\(name): no image \(image) (images present: \(OCILayoutTransport.list(tags)))")
            }
            entry = match
        } else {
            guard entries.count == 1, let only = entries.first else {
                if entries.isEmpty { throw WispError.notFound("\(name): the archive holds no image") }
                throw WispError.invalidArgument("\(name) holds \(entries.count) images: name one as \(name):REPO:TAG (images present: \(OCILayoutTransport.list(tags)))")
            }
            entry = only
        }
        guard entry.Layers.count <= OCIDocumentLimits.maxLayers else {
            throw WispError.corrupt(name, "manifest.json", "\(entry.Layers.count) layers is more than \(OCIDocumentLimits.maxLayers)")
        }
        let config = try descriptor(of: entry.Config, mediaType: OCIMediaType.dockerConfig)
        var layers: [OCIDescriptor] = []
        for file in entry.Layers {
            layers.append(try descriptor(of: file, mediaType: "application/vnd.docker.image.rootfs.diff.tar"))
        }
        return .manifest(OCIManifest(schemaVersion: 2, mediaType: OCIMediaType.dockerManifest, config: config, layers: layers))
    }

    /// A member's descriptor: its digest from its `blobs/sha256/<hex>` name, else hashed.
    private func descriptor(of file: String, mediaType: String) throws -> OCIDescriptor {
        guard let size = try storage.size(file) else {
            throw WispError.corrupt(name, "manifest.json", "names \(OCIDigest.clip(file)), which is not in the archive")
        }
        let digest: OCIDigest
        let parts = TarArchiveIndex.normalise(file).split(separator: "/")
        if parts.count == 3, parts[0] == "blobs", parts[1] == "sha256", let named = try? OCIDigest("sha256:\(parts[2])") {
            digest = named
        } else {
            let digester = SHA256Digester()
            try storage.stream(file) { digester.update($0) }
            digest = digester.finalize()
        }
        members.withLock { $0[digest] = file }
        return OCIDescriptor(mediaType: mediaType, digest: digest, size: Int64(size))
    }

    func fetch(_ descriptor: OCIDescriptor, into writer: OCIBlobWriter, progress: @escaping @Sendable (UInt64) -> Void) async throws {
        guard let file = members.withLock({ $0[descriptor.digest] }) else {
            throw WispError.notFound("\(name): blob \(descriptor.digest) is not in the archive")
        }
        try storage.stream(file) { bytes in
            try writer.write(bytes)
            progress(UInt64(bytes.count))
        }
    }

    /// `busybox` and `docker.io/library/busybox:latest` name the same image.
    static func normalise(_ name: String) -> String {
        (try? RegistryReference(parsing: name))?.description ?? name
    }
}
