import Foundation
import WispCore

/// What a pull may be told.
public struct OCIPullOptions: Sendable {
    /// The platform to pick from a multi-platform index; nil picks the host's.
    public var platform: OCIPlatform?
    /// nil: TLS verified, plain HTTP only to loopback registries. false: plain HTTP and
    /// unverified TLS allowed to any registry (`--tls-verify=false`).
    public var tlsVerify: Bool?
    /// Where registry credentials are read; nil means the usual places
    /// (`RegistryCredentials.defaultAuthFiles`).
    public var authFiles: [String]?
    /// A transfer that receives nothing for this long fails (`.timedOut`).
    public var stallTimeoutSeconds: Int = 60
    /// Layers downloaded at once.
    public var parallelDownloads: Int = 2
    public var layerLimits = OCILayerLimits()
    /// Called as blob bytes arrive, from any thread.
    public var progress: (@Sendable (OCIPullProgress) -> Void)?

    public init(platform: OCIPlatform? = nil, tlsVerify: Bool? = nil, authFiles: [String]? = nil,
                progress: (@Sendable (OCIPullProgress) -> Void)? = nil) {
        self.platform = platform
        self.tlsVerify = tlsVerify
        self.authFiles = authFiles
        self.progress = progress
    }
}

public struct OCIPullProgress: Sendable, Equatable {
    public var bytesDone: UInt64
    public var bytesTotal: UInt64
    public var layersDone: Int
    public var layersTotal: Int
}

/// A pulled image: every blob verified and in the blob store.
public struct OCIPulledImage: Sendable {
    public var reference: OCIReference
    /// The manifest's digest (nil for docker archives, which have no manifest blob).
    public var manifestDigest: OCIDigest?
    public var manifest: OCIManifest
    public var configDigest: OCIDigest
    public var config: OCIImageConfig
    /// From the config (os/architecture/variant).
    public var platform: OCIPlatform
    /// Bottom first.
    public var layers: [OCILayer]
}

/// Pulls an image from any transport into the blob store: resolves tags and platform
/// indexes, verifies every blob's size and digest as it streams and every layer's
/// uncompressed digest against the config's diff_ids, and keeps only what verified.
public struct OCIPuller: Sendable {
    public var store: OCIBlobStore
    public var options: OCIPullOptions

    public init(store: OCIBlobStore = OCIBlobStore(root: OCIBlobStore.defaultRoot), options: OCIPullOptions = OCIPullOptions()) {
        self.store = store
        self.options = options
    }

    public func pull(_ reference: OCIReference) async throws -> OCIPulledImage {
        store.sweepStaleTemporaries()
        let transport = try makeTransport(reference)
        let wanted = options.platform ?? OCIPlatform.host
        var manifestDigest: OCIDigest? = nil
        var document = try await transport.root()
        var depth = 0
        var chosenByIndex = false
        let manifest: OCIManifest
        resolve: while true {
            switch document {
            case .manifest(let made):
                manifest = made
                break resolve
            case .descriptor(let descriptor):
                guard descriptor.size >= 0, descriptor.size <= Int64(OCIDocumentLimits.maxDocumentBytes) else {
                    throw WispError.corrupt(transport.name, "descriptor of \(descriptor.digest)", "a \(descriptor.size)-byte manifest is more than the \(OCIDocumentLimits.maxDocumentBytes)-byte limit")
                }
                try await store.ingest(expected: descriptor, source: transport.name) { writer in
                    try await transport.fetch(descriptor, into: writer) { _ in }
                }
                let bytes = try store.readDocument(descriptor.digest, source: transport.name)
                document = .document(bytes: bytes, mediaType: descriptor.mediaType, digest: descriptor.digest)
            case .document(let bytes, let declared, let digest):
                let mediaType = try Self.mediaType(of: bytes, declared: declared, source: transport.name)
                if OCIMediaType.isIndex(mediaType) {
                    depth += 1
                    guard depth <= OCIDocumentLimits.maxIndexDepth else {
                        throw WispError.corrupt(transport.name, "image index", "indexes nested more than \(OCIDocumentLimits.maxIndexDepth) deep")
                    }
                    let index = try OCIJSON.decode(OCIIndex.self, bytes, source: transport.name, what: "image index \(digest.map { "\($0)" } ?? "index.json")")
                    document = .descriptor(try Self.select(wanted, from: index, source: transport.name))
                    chosenByIndex = true
                } else if OCIMediaType.isManifest(mediaType) {
                    manifestDigest = digest
                    manifest = try OCIJSON.decode(OCIManifest.self, bytes, source: transport.name, what: "manifest \(digest.map { "\($0)" } ?? "")")
                    break resolve
                } else {
                    throw WispError.unsupported(transport.name, "media type \(OCIDigest.clip(mediaType)) is neither an image manifest nor an index (a Helm chart or other artifact?)")
                }
            }
        }
        guard manifest.layers.count <= OCIDocumentLimits.maxLayers else {
            throw WispError.corrupt(transport.name, "manifest", "\(manifest.layers.count) layers is more than \(OCIDocumentLimits.maxLayers)")
        }
        let configDescriptor = manifest.config
        guard configDescriptor.size >= 0, configDescriptor.size <= Int64(OCIDocumentLimits.maxDocumentBytes) else {
            throw WispError.corrupt(transport.name, "config descriptor", "a \(configDescriptor.size)-byte config is more than the \(OCIDocumentLimits.maxDocumentBytes)-byte limit")
        }
        try await store.ingest(expected: configDescriptor, source: transport.name) { writer in
            try await transport.fetch(configDescriptor, into: writer) { _ in }
        }
        let config = try OCIJSON.decode(OCIImageConfig.self, try store.readDocument(configDescriptor.digest, source: transport.name),
                                        source: transport.name, what: "image config \(configDescriptor.digest)")
        let platform = OCIPlatform(os: config.os ?? "linux", architecture: config.architecture ?? "unknown", variant: config.variant)
        if let asked = options.platform, !chosenByIndex, !asked.accepts(platform) {
            throw WispError.notFound("\(transport.name): the image is for \(platform), not \(asked)")
        }
        guard config.rootfs.type == "layers" else {
            throw WispError.unsupported(transport.name, "rootfs type \(OCIDigest.clip(config.rootfs.type)) (only \"layers\")")
        }
        guard config.rootfs.diff_ids.count == manifest.layers.count else {
            throw WispError.corrupt(transport.name, "image config", "\(config.rootfs.diff_ids.count) diff_ids for \(manifest.layers.count) layers")
        }
        var layers: [OCILayer] = []
        for (layer, diffID) in zip(manifest.layers, config.rootfs.diff_ids) {
            guard layer.size >= 0 else { throw WispError.corrupt(transport.name, "layer descriptor", "negative size \(layer.size)") }
            let compression: LayerCompression
            if transport.detectsLayerCompression {
                compression = .detect
            } else if let known = OCIMediaType.layerCompression(layer.mediaType) {
                compression = known
            } else {
                throw WispError.unsupported(transport.name, "layer media type \(OCIDigest.clip(layer.mediaType))")
            }
            layers.append(OCILayer(descriptor: layer, diffID: diffID, compression: compression, path: store.path(of: layer.digest)))
        }
        try await download(layers, from: transport)
        return OCIPulledImage(reference: reference, manifestDigest: manifestDigest, manifest: manifest,
                              configDigest: configDescriptor.digest, config: config, platform: platform, layers: layers)
    }

    /// Layers not yet stored, `parallelDownloads` at a time.
    private func download(_ layers: [OCILayer], from transport: any OCIImageTransport) async throws {
        let store = self.store
        var seen = Set<OCIDigest>()
        let missing = layers.filter { !store.contains($0.descriptor.digest, size: $0.descriptor.size) && seen.insert($0.descriptor.digest).inserted }
        let total = missing.reduce(UInt64(0)) { $0 + UInt64($1.descriptor.size) }
        let state = LockedValue(OCIPullProgress(bytesDone: 0, bytesTotal: total, layersDone: 0, layersTotal: missing.count))
        let progress = options.progress
        let limits = options.layerLimits
        progress?(state.withLock { $0 })
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func start(_ layer: OCILayer) {
                group.addTask {
                    let number = layers.firstIndex(of: layer).map { $0 + 1 } ?? 0
                    let source = "\(transport.name): layer \(number) (\(layer.descriptor.digest))"
                    let check = DiffIDCheck(expected: layer.diffID, compression: layer.compression,
                                            limit: limits.limit(compressedSize: UInt64(layer.descriptor.size)), source: source)
                    try await store.ingest(expected: layer.descriptor, source: source, diffID: check) { writer in
                        try await transport.fetch(layer.descriptor, into: writer) { bytes in
                            let now = state.withLock { $0.bytesDone += bytes; return $0 }
                            progress?(now)
                        }
                    }
                    let now = state.withLock { $0.layersDone += 1; return $0 }
                    progress?(now)
                }
            }
            while next < missing.count && next < max(1, options.parallelDownloads) {
                start(missing[next])
                next += 1
            }
            while try await group.next() != nil {
                if next < missing.count {
                    start(missing[next])
                    next += 1
                }
            }
        }
    }

    func makeTransport(_ reference: OCIReference) throws -> any OCIImageTransport {
        switch reference {
        case .layout(let directory, let tag):
            return OCILayoutTransport(storage: DirectoryStorage(directory: directory, name: reference.description), tag: tag, name: reference.description)
        case .layoutArchive(let file, let tag):
            return OCILayoutTransport(storage: try Self.archive(file, reference), tag: tag, name: reference.description)
        case .dockerArchive(let file, let image):
            return DockerArchiveTransport(storage: try Self.archive(file, reference), image: image, name: reference.description)
        case .registry(let registry):
            return RegistryTransport(reference: registry, options: options)
        }
    }

    private static func archive(_ file: String, _ reference: OCIReference) throws -> TarStorage {
        guard FileManager.default.fileExists(atPath: file) else { throw WispError.notFound("\(reference): no such file") }
        return try TarStorage(path: file, name: reference.description)
    }

    /// The media type a document declares in its own `mediaType` field wins over what the
    /// transport said; without either, its shape tells (`manifests` or `layers`).
    static func mediaType(of bytes: [UInt8], declared: String?, source: String) throws -> String {
        struct Probe: Decodable {
            var mediaType: String?
            var manifests: [OCIDescriptor]?
            var layers: [OCIDescriptor]?
        }
        let probe = try OCIJSON.decode(Probe.self, bytes, source: source, what: "manifest")
        if let own = probe.mediaType, !own.isEmpty { return own }
        if let declared, OCIMediaType.isIndex(declared) || OCIMediaType.isManifest(declared) { return declared }
        if probe.manifests != nil { return OCIMediaType.ociIndex }
        if probe.layers != nil { return OCIMediaType.ociManifest }
        return declared ?? "unknown"
    }

    /// The index entry for `wanted`, attestations skipped; nested indexes are followed by
    /// the caller.
    static func select(_ wanted: OCIPlatform, from index: OCIIndex, source: String) throws -> OCIDescriptor {
        let images = index.manifests.filter { !$0.isAttestation }
        if let match = images.first(where: { $0.platform.map(wanted.accepts) ?? false }) { return match }
        // An entry without a platform is taken when it is the only image (a nested index
        // or a single-platform image in a layout).
        if images.count == 1, let only = images.first, only.platform == nil { return only }
        let present = images.compactMap { $0.platform?.description }
        throw WispError.notFound("\(source): no image for \(wanted) (platforms present: \(present.isEmpty ? "none" : present.joined(separator: ", ")))")
    }
}
