import WispCore

/// Where an OCI image is, in the transport syntax skopeo and podman use:
///
///     oci:DIR[:TAG]                   an OCI image layout directory
///     oci-archive:FILE[:TAG]          a tar of an OCI image layout
///     docker-archive:FILE[:REPO:TAG]  `docker save` output (legacy or Docker 25+ layout)
///     docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX]   a registry (Distribution v2)
public enum OCIReference: Sendable, Equatable, CustomStringConvertible {
    case layout(directory: String, tag: String?)
    case layoutArchive(file: String, tag: String?)
    case dockerArchive(file: String, image: String?)
    case registry(RegistryReference)

    public static let transports = ["oci", "oci-archive", "docker-archive", "docker"]

    /// True when `text` starts with one of the transports above (so a caller can tell an
    /// OCI reference from a file name).
    public static func hasTransport(_ text: String) -> Bool {
        guard let colon = text.firstIndex(of: ":") else { return false }
        return transports.contains(String(text[..<colon]))
    }

    public static func parse(_ text: String) throws -> OCIReference {
        guard let colon = text.firstIndex(of: ":") else {
            throw WispError.invalidArgument("\(text): not an OCI reference: expected TRANSPORT:NAME with transport one of \(transports.joined(separator: ", "))")
        }
        let transport = String(text[..<colon])
        let rest = String(text[text.index(after: colon)...])
        switch transport {
        case "oci", "oci-archive":
            // Like containers/image: the path ends at the first colon, the tag is the rest.
            let parts = rest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let path = parts.first, !path.isEmpty else {
                throw WispError.invalidArgument("\(text): the \(transport) transport needs a path (\(transport):PATH[:TAG])")
            }
            let tag = parts.count == 2 ? parts[1] : nil
            if let tag, tag.isEmpty {
                throw WispError.invalidArgument("\(text): empty tag after the path")
            }
            return transport == "oci" ? .layout(directory: path, tag: tag) : .layoutArchive(file: path, tag: tag)
        case "docker-archive":
            let parts = rest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let path = parts.first, !path.isEmpty else {
                throw WispError.invalidArgument("\(text): the docker-archive transport needs a path (docker-archive:FILE[:REPO:TAG])")
            }
            let image = parts.count == 2 ? parts[1] : nil
            if let image, image.isEmpty {
                throw WispError.invalidArgument("\(text): empty image name after the path")
            }
            return .dockerArchive(file: path, image: image)
        case "docker":
            guard rest.hasPrefix("//") else {
                throw WispError.invalidArgument("\(text): registry references are written docker://HOST/REPO[:TAG]")
            }
            return .registry(try RegistryReference(parsing: String(rest.dropFirst(2))))
        default:
            throw WispError.invalidArgument("\(text): unknown transport \(OCIDigest.clip(transport)): (known: \(transports.map { $0 + ":" }.joined(separator: ", ")))")
        }
    }

    public var description: String {
        switch self {
        case .layout(let directory, let tag): "oci:\(directory)" + (tag.map { ":\($0)" } ?? "")
        case .layoutArchive(let file, let tag): "oci-archive:\(file)" + (tag.map { ":\($0)" } ?? "")
        case .dockerArchive(let file, let image): "docker-archive:\(file)" + (image.map { ":\($0)" } ?? "")
        case .registry(let reference): "docker://\(reference)"
        }
    }
}

/// A registry image, normalised the way docker does: no host means docker.io, and a
/// one-part repository on docker.io gets `library/`; no tag or digest means `latest`.
public struct RegistryReference: Sendable, Equatable, CustomStringConvertible {
    /// `host[:port]` as written (docker.io for Docker Hub).
    public var host: String
    public var repository: String
    public var tag: String?
    public var digest: OCIDigest?

    public init(host: String, repository: String, tag: String? = nil, digest: OCIDigest? = nil) {
        self.host = host
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    public init(parsing text: String) throws {
        var name = text
        var digest: OCIDigest? = nil
        if let at = name.firstIndex(of: "@") {
            let digestText = String(name[name.index(after: at)...])
            do { digest = try OCIDigest(digestText) } catch {
                throw WispError.invalidArgument("docker://\(text): \(OCIDigest.clip(digestText)) is not a sha256:<64 hex> digest")
            }
            name = String(name[..<at])
        }
        var tag: String? = nil
        // A tag's colon comes after the last slash (a port's colon comes before it).
        if let colon = name.lastIndex(of: ":"), !name[colon...].contains("/") {
            tag = String(name[name.index(after: colon)...])
            name = String(name[..<colon])
        }
        var components = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !name.isEmpty, components.allSatisfy({ !$0.isEmpty }) else {
            throw WispError.invalidArgument("docker://\(text): expected HOST[:PORT]/REPOSITORY[:TAG|@sha256:DIGEST]")
        }
        var host = "docker.io"
        if components.count > 1, let first = components.first,
           first.contains(".") || first.contains(":") || first == "localhost" || first.hasPrefix("[") {
            host = first
            components.removeFirst()
        }
        if host == "index.docker.io" || host == "registry-1.docker.io" { host = "docker.io" }
        if host == "docker.io", components.count == 1 { components.insert("library", at: 0) }
        let repository = components.joined(separator: "/")
        guard Self.isValidRepository(repository) else {
            throw WispError.invalidArgument("docker://\(text): \(OCIDigest.clip(repository)) is not a valid repository name (lowercase letters, digits and . _ - separators)")
        }
        if let tag {
            guard Self.isValidTag(tag) else {
                throw WispError.invalidArgument("docker://\(text): \(OCIDigest.clip(tag)) is not a valid tag (up to 128 of A-Z a-z 0-9 _ . -, not starting with . or -)")
            }
        }
        self.init(host: host, repository: repository, tag: digest == nil && tag == nil ? "latest" : tag, digest: digest)
    }

    /// The host the API is reached at (Docker Hub's API is not at docker.io).
    public var apiHost: String { host == "docker.io" ? "registry-1.docker.io" : host }

    /// What a manifest GET asks for: the digest when pinned, else the tag.
    public var manifestReference: String { digest?.description ?? tag ?? "latest" }

    public var description: String {
        "\(host)/\(repository)" + (tag.map { ":\($0)" } ?? "") + (digest.map { "@\($0)" } ?? "")
    }

    static func isValidRepository(_ name: String) -> Bool {
        guard name.utf8.count <= 255 else { return false }
        return name.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { part in
            guard let first = part.utf8.first, let last = part.utf8.last,
                  Self.isLowerAlnum(first), Self.isLowerAlnum(last) else { return false }
            return part.utf8.allSatisfy { Self.isLowerAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
        }
    }

    static func isValidTag(_ tag: String) -> Bool {
        guard let first = tag.utf8.first, tag.utf8.count <= 128, first != UInt8(ascii: "."), first != UInt8(ascii: "-") else { return false }
        return tag.utf8.allSatisfy { isLowerAlnum($0) || (65...90).contains($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    private static func isLowerAlnum(_ c: UInt8) -> Bool { (48...57).contains(c) || (97...122).contains(c) }
}
