import Foundation
import WispCore

/// `docker://HOST/REPO[:TAG|@DIGEST]`: an image from a registry (OCI Distribution v2).
struct RegistryTransport: OCIImageTransport {
    let client: RegistryClient
    let reference: RegistryReference
    var name: String { client.name }
    var detectsLayerCompression: Bool { false }

    /// A cut transfer is resumed this many times (with Range) while it makes progress.
    static let maxResumes = 5

    init(reference: RegistryReference, options: OCIPullOptions) {
        self.reference = reference
        client = RegistryClient(reference: reference, tlsVerify: options.tlsVerify,
                                    authFiles: options.authFiles ?? RegistryCredentials.defaultAuthFiles,
                                    stallTimeoutSeconds: options.stallTimeoutSeconds)
    }

    func root() async throws -> OCIRootDocument {
        let (bytes, response) = try await manifest(reference.manifestReference)
        let digest = SHA256Digester.digest(bytes)
        if let pinned = reference.digest, pinned != digest {
            throw WispError(.digestMismatch, "\(name): manifest expected \(pinned), got \(digest)")
        }
        if let claimed = response.header("docker-content-digest"), let claimedDigest = try? OCIDigest(claimed), claimedDigest != digest {
            throw WispError(.digestMismatch, "\(name): manifest expected \(claimedDigest) (Docker-Content-Digest), got \(digest)")
        }
        let mediaType = response.header("content-type").map { $0.split(separator: ";").first.map { String($0).trimmingCharacters(in: .whitespaces) } ?? $0 }
        return .document(bytes: bytes, mediaType: mediaType, digest: digest)
    }

    /// A manifest or index, refused past the document limit while it arrives.
    private func manifest(_ ref: String) async throws -> ([UInt8], HTTPExchange.Response) {
        let collected = LockedValue<[UInt8]>([])
        let limit = OCIDocumentLimits.maxDocumentBytes
        let source = name
        let response = try await client.get("manifests/\(ref)", accept: OCIMediaType.acceptedManifests, totalTimeoutSeconds: 300) { _, bytes in
            try collected.withLock {
                guard $0.count + bytes.count <= limit else {
                    throw WispError.corrupt(source, "manifest \(ref)", "larger than the \(limit)-byte limit")
                }
                $0 += bytes
            }
        }
        return (collected.withLock { $0 }, response)
    }

    func fetch(_ descriptor: OCIDescriptor, into writer: OCIBlobWriter, progress: @escaping @Sendable (UInt64) -> Void) async throws {
        if OCIMediaType.isIndex(descriptor.mediaType) || OCIMediaType.isManifest(descriptor.mediaType) {
            let (bytes, _) = try await manifest(descriptor.digest.description)
            try bytes.withUnsafeBytes { try writer.write($0) }
            return
        }
        var resumes = 0
        while true {
            let start = writer.written
            do {
                let headers = start > 0 ? ["Range: bytes=\(start)-"] : []
                var first = true
                let source = name
                _ = try await client.get("blobs/\(descriptor.digest)", extraHeaders: headers) { response, bytes in
                    if first {
                        first = false
                        if start > 0 {
                            if response.status == 206 {
                                guard Self.rangeStart(response.header("content-range")) == start else {
                                    throw WispError(.corrupt, "\(source): blob \(descriptor.digest): asked to resume at byte \(start), the registry answered Content-Range \(OCIDigest.clip(response.header("content-range") ?? "none"))")
                                }
                            } else {
                                // The registry ignored the Range: it sends everything again.
                                try writer.restart()
                            }
                        }
                    }
                    try writer.write(bytes)
                    progress(UInt64(bytes.count))
                }
                return
            } catch let error as WispError where error.kind == .connectionClosed || error.kind == .timedOut || error.kind == .io {
                // Resume only a transfer that got somewhere; a dead server fails at once.
                guard writer.written > start, resumes < Self.maxResumes,
                      writer.written < UInt64(max(0, descriptor.size)) else { throw error.prefixed("blob \(descriptor.digest)") }
                resumes += 1
            }
        }
    }

    /// The first byte of `bytes N-M/T`.
    static func rangeStart(_ header: String?) -> UInt64? {
        guard let header, header.hasPrefix("bytes ") else { return nil }
        let range = header.dropFirst(6)
        guard let dash = range.firstIndex(of: "-") else { return nil }
        return UInt64(range[..<dash])
    }
}
