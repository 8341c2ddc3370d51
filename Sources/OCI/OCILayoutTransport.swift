import WispCore

/// `oci:DIR[:TAG]` and `oci-archive:FILE[:TAG]`: an OCI image layout (image-spec
/// image-layout.md), its tags the `org.opencontainers.image.ref.name` annotations of
/// index.json.
struct OCILayoutTransport: OCIImageTransport {
    let storage: any LayoutStorage
    let tag: String?
    let name: String
    var detectsLayerCompression: Bool { false }

    init(storage: any LayoutStorage, tag: String?, name: String) {
        self.storage = storage
        self.tag = tag
        self.name = name
    }

    func root() async throws -> OCIRootDocument {
        if let layout = try storage.readDocument("oci-layout") {
            struct Layout: Decodable { var imageLayoutVersion: String }
            let version = try OCIJSON.decode(Layout.self, layout, source: name, what: "oci-layout").imageLayoutVersion
            guard version.hasPrefix("1.") else {
                throw WispError.unsupported(name, "image layout version \(OCIDigest.clip(version)) (only 1.x is read)")
            }
        } else {
            throw WispError.notFound("\(name): not an OCI image layout (no oci-layout file)")
        }
        guard let indexBytes = try storage.readDocument("index.json") else {
            throw WispError.corrupt(name, "image layout", "index.json is missing")
        }
        let index = try OCIJSON.decode(OCIIndex.self, indexBytes, source: name, what: "index.json")
        let tags = index.manifests.compactMap(\.refName)
        if let tag {
            // A ref.name may be a bare tag or a full name ending in :tag (skopeo writes bare tags).
            let matches = index.manifests.filter { $0.refName == tag || $0.refName?.hasSuffix(":\(tag)") == true }
            guard let first = matches.first else {
                throw WispError.notFound("\(name): no image tagged \(tag) (tags present: \(Self.list(tags)))")
            }
            guard matches.count == 1 || Set(matches.map(\.digest)).count == 1 else {
                throw WispError.corrupt(name, "index.json", "several images are tagged \(tag)")
            }
            return .descriptor(first)
        }
        let images = index.manifests.filter { !$0.isAttestation }
        if images.count == 1, let only = images.first { return .descriptor(only) }
        if images.isEmpty { throw WispError.notFound("\(name): the layout holds no image") }
        if tags.isEmpty {
            // Untagged manifests for several platforms: index.json is the platform index.
            return .document(bytes: indexBytes, mediaType: OCIMediaType.ociIndex, digest: nil)
        }
        throw WispError.invalidArgument("\(name) holds \(images.count) images: name one as \(name):TAG (tags present: \(Self.list(tags)))")
    }

    func fetch(_ descriptor: OCIDescriptor, into writer: OCIBlobWriter, progress: @escaping @Sendable (UInt64) -> Void) async throws {
        let file = "blobs/sha256/\(descriptor.digest.hex)"
        guard try storage.size(file) != nil else {
            throw WispError.notFound("\(name): blob \(descriptor.digest) is missing from the layout")
        }
        try storage.stream(file) { bytes in
            try writer.write(bytes)
            progress(UInt64(bytes.count))
        }
    }

    static func list(_ tags: [String]) -> String {
        tags.isEmpty ? "none" : tags.map { OCIDigest.clip($0) }.joined(separator: ", ")
    }
}
