import Foundation
import WispCore

/// The minimal push side of the Distribution API, for one image of one layer (a
/// containerDisk): each blob is asked for with HEAD and skipped when the registry has it,
/// else uploaded monolithically (POST to open an upload, PUT of the whole body to the
/// Location with `?digest=`), then the manifest is PUT under the tag. Auth and the
/// http/https choice are the pull client's (bearer tokens ask for the scope the registry's
/// challenge names, push included).
public struct OCIPusher: Sendable {
    public struct Outcome: Sendable, Equatable {
        public var manifestDigest: OCIDigest
        public var uploaded: [OCIDigest]
        public var skipped: [OCIDigest]
    }

    let client: RegistryClient
    let reference: RegistryReference
    static let maxLocation = 8 << 10

    public init(reference: RegistryReference, tlsVerify: Bool? = nil, authFiles: [String]? = nil) {
        self.reference = reference
        client = RegistryClient(reference: reference, tlsVerify: tlsVerify,
                                authFiles: authFiles ?? RegistryCredentials.defaultAuthFiles, stallTimeoutSeconds: 60)
    }

    public func push(_ image: ContainerDiskImage) async throws -> Outcome {
        guard let tag = reference.tag, reference.digest == nil else {
            throw WispError(.invalidArgument, "\(reference): push needs a tag (REGISTRY/REPOSITORY:TAG), not a digest")
        }
        var outcome = Outcome(manifestDigest: image.manifestDigest, uploaded: [], skipped: [])
        let layerFD = open(image.layerPath, O_RDONLY | O_CLOEXEC)
        guard layerFD >= 0 else { throw WispError(.io, "\(image.layerPath): cannot open the layer (errno \(errno))") }
        defer { close(layerFD) }
        let blobs: [(OCIDescriptor, HTTPExchange.Body)] = [
            (image.layer, .file(fd: layerFD, size: UInt64(image.layer.size))),
            (image.configDescriptor, .bytes(image.config)),
        ]
        for (descriptor, body) in blobs {
            if try await exists(descriptor) {
                outcome.skipped.append(descriptor.digest)
            } else {
                try await upload(descriptor, body)
                outcome.uploaded.append(descriptor.digest)
            }
        }
        let response = try await client.get("manifests/\(tag)", method: "PUT", requestBody: .bytes(image.manifest),
                                            extraHeaders: ["Content-Type: \(OCIMediaType.ociManifest)"]) { _, _ in }
        if let sent = response.header("docker-content-digest"), sent != image.manifestDigest.description {
            throw WispError(.corrupt, "docker://\(reference): the registry stored the manifest as \(OCIDigest.clip(sent)), not \(image.manifestDigest)")
        }
        return outcome
    }

    /// HEAD of the blob: 200 with the same length means present; 404 absent.
    func exists(_ descriptor: OCIDescriptor) async throws -> Bool {
        do {
            let response = try await client.get("blobs/\(descriptor.digest)", method: "HEAD") { _, _ in }
            if let length = response.header("content-length"), Int64(length) != descriptor.size {
                throw WispError(.corrupt, "docker://\(reference): the registry has \(descriptor.digest) with \(OCIDigest.clip(length)) bytes, not \(descriptor.size)")
            }
            return true
        } catch let error as WispError where error.kind == .notFound {
            return false
        }
    }

    func upload(_ descriptor: OCIDescriptor, _ body: HTTPExchange.Body) async throws {
        let opened = try await client.get("blobs/uploads/", method: "POST", requestBody: .bytes([])) { _, bytes in
            guard bytes.count <= RegistryClient.maxErrorBody else { throw WispError(.corrupt, "docker://\(reference): the upload answer is too long") }
        }
        guard opened.status == 202, let location = opened.header("location") else {
            throw WispError(.corrupt, "docker://\(reference): the registry opened an upload with HTTP \(opened.status) and no Location")
        }
        let target = try uploadURL(location, digest: descriptor.digest)
        _ = try await client.get("", method: "PUT", url: target, requestBody: body,
                                 extraHeaders: ["Content-Type: application/octet-stream"]) { _, bytes in
            guard bytes.count <= RegistryClient.maxErrorBody else { throw WispError(.corrupt, "docker://\(reference): the upload answer is too long") }
        }
    }

    /// The upload's Location, resolved against the registry and checked to stay on it (it
    /// gets the credentials), with `digest=` added to its query.
    func uploadURL(_ location: String, digest: OCIDigest) throws -> String {
        let scheme = client.currentScheme ?? "https"
        guard location.utf8.count <= Self.maxLocation, !location.contains(where: { $0.isNewline || $0 == "\0" }),
              let base = URL(string: "\(scheme)://\(reference.apiHost)/v2/"),
              let resolved = URL(string: location, relativeTo: base)?.absoluteURL,
              var components = URLComponents(url: resolved, resolvingAgainstBaseURL: true),
              let host = components.host else {
            throw WispError(.corrupt, "docker://\(reference): the registry's upload Location is not a URL")
        }
        let authority = components.port.map { "\(host):\($0)" } ?? host
        guard authority.lowercased() == reference.apiHost.lowercased(), components.scheme?.lowercased() == scheme else {
            throw WispError(.permissionDenied, "docker://\(reference): the registry sent the upload to another place (\(HTTPExchange.redact(resolved.absoluteString))); refused")
        }
        components.queryItems = (components.queryItems ?? []) + [URLQueryItem(name: "digest", value: digest.description)]
        guard let url = components.url?.absoluteString else {
            throw WispError(.corrupt, "docker://\(reference): the registry's upload Location is not a URL")
        }
        return url
    }
}
