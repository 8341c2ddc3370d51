import Foundation
import WispCore

/// A catalog name made concrete: the build, the image's URL, the digest its distribution
/// published for it, and how far that digest is trusted. Recorded beside the cached image.
public struct CatalogResolution: Sendable, Equatable, Codable {
    public var name: String
    public var distribution: String
    public var release: String
    public var architecture: String
    /// The concrete build: the dated directory (Debian, Ubuntu, Arch) or, when the version is
    /// in the file name (Fedora, Alma, Rocky, CentOS, Alpine, openSUSE), the file name.
    public var build: String
    public var url: String
    public var checksumURL: String
    public var algorithm: ChecksumAlgorithm
    public var digest: String
    public var trust: ImageTrust

    public init(name: String, distribution: String, release: String, architecture: String, build: String, url: String,
                checksumURL: String, algorithm: ChecksumAlgorithm, digest: String, trust: ImageTrust) {
        self.name = name
        self.distribution = distribution
        self.release = release
        self.architecture = architecture
        self.build = build
        self.url = url
        self.checksumURL = checksumURL
        self.algorithm = algorithm
        self.digest = digest
        self.trust = trust
    }
}

/// Name → URL → checksum, the way each distribution publishes: lists the parent of a
/// `{build}` directory for the newest build, finds the checksum file (by name, or by glob
/// in the directory listing), finds the image's own line in it, and checks the checksum
/// file's signature with gpgv when the distribution signs it and its keyring is installed.
public struct CatalogResolver: Sendable {
    public var entry: CatalogEntry
    public var architecture: String
    /// Replaces `entry.root` (config.yaml `mirrors:`).
    public var mirror: String?
    /// A server that sends nothing for this long is given up (60 s when 0).
    public var stallSeconds: Int = 0

    public init(entry: CatalogEntry, architecture: String, mirror: String? = nil) {
        self.entry = entry
        self.architecture = architecture
        self.mirror = mirror
    }

    public func resolve() async throws -> CatalogResolution {
        guard var values = entry.arches[architecture] else {
            throw WispError(.unsupported, "\(entry.name) is not published for \(architecture) (it is for \(entry.architectures.joined(separator: ", ")))")
        }
        values["release"] = entry.release
        var root = mirror ?? entry.root
        if !root.hasSuffix("/") { root += "/" }
        var build: String?
        if let range = entry.directory.range(of: "{build}"), let pattern = entry.build {
            let parent = root + (try fill(String(entry.directory[..<range.lowerBound]), values))
            let names = try await listing(parent)
            guard let newest = NameGlob(try fill(pattern, values)).newest(in: names) else {
                throw WispError(.notFound, "\(parent): no build directory matching \(pattern) (\(entry.name))")
            }
            build = newest
            values["build"] = newest
        }
        let directory = root + (try fill(entry.directory, values))
        let perImage = entry.checksumFile.contains("{file}")
        let fileGlob = NameGlob(try fill(entry.file, values))
        var fileName: String?
        var directoryNames: [String]?
        func names() async throws -> [String] {
            if let directoryNames { return directoryNames }
            let listed = try await listing(directory)
            directoryNames = listed
            return listed
        }
        if perImage {
            // The checksum file is named after the image: the image is found first.
            if fileGlob.isLiteral {
                fileName = String(decoding: fileGlob.pattern, as: UTF8.self)
            } else {
                guard let found = fileGlob.newest(in: try await names()) else {
                    throw WispError(.notFound, "\(directory): no image matching \(entry.file) (\(entry.name))")
                }
                fileName = found
            }
            values["file"] = fileName
        }
        var checksumName = try fill(entry.checksumFile, values)
        let checksumGlob = NameGlob(checksumName)
        if !checksumGlob.isLiteral {
            guard let found = checksumGlob.newest(in: try await names()) else {
                throw WispError(.notFound, "\(directory): no checksum file matching \(entry.checksumFile) (\(entry.name))")
            }
            checksumName = found
        }
        let checksumURL = try url(directory + checksumName)
        let checksumBytes = try await HTTPDownload.text(checksumURL, limit: ChecksumList.maxBytes, stallSeconds: stallSeconds)
        let list = try ChecksumList.parse(checksumBytes, algorithm: entry.algorithm, source: checksumURL.absoluteString)
        let digest: String
        if let fileName {
            if let listed = try list.digest(for: fileName, source: checksumURL.absoluteString) {
                digest = listed
            } else if list.lines.count == 1 {
                // openSUSE's per-image file names the build its link points at.
                digest = list.lines[0].hex
                build = build ?? list.lines[0].name
            } else {
                throw WispError(.notFound, "\(checksumURL.absoluteString): no \(entry.algorithm.rawValue) line for \(fileName)")
            }
        } else {
            guard let found = fileGlob.newest(in: list.names) else {
                throw WispError(.notFound, "\(checksumURL.absoluteString): no \(entry.algorithm.rawValue) line for an image matching \(entry.file) (\(entry.name))")
            }
            fileName = found
            guard let listed = try list.digest(for: found, source: checksumURL.absoluteString) else {
                throw WispError(.notFound, "\(checksumURL.absoluteString): no line for \(found)")
            }
            digest = listed
        }
        let image = fileName ?? ""
        var trust = ImageTrust.checksumOnly
        if let signature = entry.signature, SignatureCheck.available(keyring: signature.keyring) {
            var detached: [UInt8]?
            if signature.kind == .detached, let sigFile = signature.file {
                detached = try await HTTPDownload.text(try url(directory + (try fill(sigFile, values))), limit: 1 << 20, stallSeconds: stallSeconds)
            }
            try SignatureCheck.verify(data: checksumBytes, signature: detached, keyring: signature.keyring, source: checksumURL.absoluteString)
            trust = .signed
        }
        return CatalogResolution(name: entry.name, distribution: entry.distribution, release: entry.release,
                                 architecture: architecture, build: build ?? image,
                                 url: try url(directory + image).absoluteString, checksumURL: checksumURL.absoluteString,
                                 algorithm: entry.algorithm, digest: digest, trust: trust)
    }

    func listing(_ directory: String) async throws -> [String] {
        let bytes = try await HTTPDownload.text(try url(directory), limit: DirectoryListing.maxBytes, stallSeconds: stallSeconds)
        return DirectoryListing.names(in: bytes)
    }

    func url(_ text: String) throws -> URL {
        guard let url = URL(string: text), url.host != nil else {
            throw WispError(.invalidArgument, "\(entry.source): \(entry.name): \(text.prefix(200)) is not a valid URL")
        }
        return url
    }

    /// Replaces `{KEY}` with its value; an unknown key is the catalog's mistake, said so.
    func fill(_ template: String, _ values: [String: String]) throws -> String {
        var out = ""
        var rest = template[...]
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            guard let close = rest[open...].firstIndex(of: "}") else { break }
            let key = String(rest[rest.index(after: open)..<close])
            guard let value = values[key] else {
                throw WispError(.invalidArgument, "\(entry.source): \(entry.name): {\(key)} in '\(template)' has no value for \(architecture)")
            }
            out += value
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }
}
