import DiskImage
import Foundation
import WispCore

/// An image from the catalog as it sits in the cache: the verified, unpacked disk and what
/// it is (`<leaf>.json` beside `<leaf>`, written after the disk, so a record always has its
/// disk).
public struct CachedCatalogImage: Sendable, Equatable, Codable {
    public var resolution: CatalogResolution
    /// The cached disk's file name in the catalog cache directory.
    public var file: String
    /// SHA-256 of the cached (unpacked) disk.
    public var sha256: String
    public var size: UInt64
    public var downloaded: Date
    public var lastUsed: Date

    public init(resolution: CatalogResolution, file: String, sha256: String, size: UInt64, downloaded: Date, lastUsed: Date) {
        self.resolution = resolution
        self.file = file
        self.sha256 = sha256
        self.size = size
        self.downloaded = downloaded
        self.lastUsed = lastUsed
    }
}

/// `$XDG_CACHE_HOME/wisp/images/catalog`: one disk and one record per name, architecture
/// and build; `.staging/` holds partial downloads (resumed, never used as images).
public struct CatalogCache: Sendable {
    public let path: String

    public init(images: ImageCacheDirectory) { path = images.path + "/catalog" }

    var staging: String { path + "/.staging" }

    public func create() throws {
        try ImageCacheDirectory(path: path).create()
    }

    /// Every cached image with a readable record whose disk exists (newest build first per
    /// name). A record that does not parse is skipped, not trusted.
    public func images() -> [CachedCatalogImage] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return [] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return names.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.compactMap { name -> (record: CachedCatalogImage, written: Date)? in
            let recordPath = "\(path)/\(name)"
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: recordPath),
                  let size = attributes[.size] as? NSNumber, size.intValue <= 64 << 10,
                  let data = FileManager.default.contents(atPath: recordPath),
                  let record = try? decoder.decode(CachedCatalogImage.self, from: data),
                  record.file == String(name.dropLast(5)), FileManager.default.fileExists(atPath: "\(path)/\(record.file)") else { return nil }
            return (record, attributes[.modificationDate] as? Date ?? .distantPast)
        }.sorted { first, second in
            let (a, b) = (first.record, second.record)
            // Per name and architecture, the newest build first.
            if a.resolution.name != b.resolution.name { return a.resolution.name < b.resolution.name }
            if a.resolution.architecture != b.resolution.architecture { return a.resolution.architecture < b.resolution.architecture }
            if a.resolution.build != b.resolution.build { return NameGlob.versionOrder(b.resolution.build, a.resolution.build) }
            // The same build republished: the later pull (the record's stamp is in whole
            // seconds; its file's time breaks a tie).
            return a.downloaded != b.downloaded ? a.downloaded > b.downloaded : first.written > second.written
        }.map(\.record)
    }

    /// The newest cached build of `name` for `architecture`.
    public func newest(name: String, architecture: String) -> CachedCatalogImage? {
        images().first { $0.resolution.name == name && $0.resolution.architecture == architecture }
    }

    public func diskPath(_ image: CachedCatalogImage) -> String { "\(path)/\(image.file)" }

    /// `<name>-<arch>-<build>-<first 12 hex of the published digest>`: one entry per build and
    /// digest (a build republished with new bytes gets a file of its own, never the old one's),
    /// named so a person can tell what it is. A build too long or not file-name safe is
    /// shortened with a hash of the whole, never cut into a name another build could share.
    static func leaf(_ resolution: CatalogResolution, downloadName: String) -> String {
        let unpacked = ImageUnpacker.unpackedName(of: downloadName)
        let ext = URL(fileURLWithPath: unpacked).pathExtension
        // A build that is the download's name (Fedora's, Alpine's) loses its packing suffix too.
        var build = ImageUnpacker.unpackedName(of: resolution.build)
        if !ext.isEmpty, build.hasSuffix("." + ext), build.count > ext.count + 1 { build.removeLast(ext.count + 1) }
        let digest = HTTPImageSource.sanitize(String(resolution.digest.prefix(12)))
        let stem = "\(HTTPImageSource.sanitize(resolution.name))-\(HTTPImageSource.sanitize(resolution.architecture))-\(buildPart(build))-\(digest)"
        return ext.isEmpty ? stem : "\(stem).\(HTTPImageSource.sanitize(ext))"
    }

    static let maxBuildPart = 64

    /// The build as it is when it is short and safe, else its first 40 safe characters and 16
    /// hex of its SHA-256 (two builds differing past the cut stay apart).
    static func buildPart(_ build: String) -> String {
        let safe = String(build.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") ? $0 : "-" })
        if safe == build, !safe.isEmpty, safe.count <= maxBuildPart, !safe.allSatisfy({ $0 == "." }) { return safe }
        var hasher = SHA256()
        hasher.update(Array(build.utf8))
        return "\(safe.prefix(40))-\(SHA256.hex(hasher.finalize()).prefix(16))"
    }

    /// Whether `target` already holds a disk (called under the download lock). Instances back
    /// onto cached disks, so one is never replaced: the same bytes are reused, other bytes
    /// under the same name are refused.
    static func alreadyCached(_ target: String, sha256: String) throws -> Bool {
        guard FileManager.default.fileExists(atPath: target) else { return false }
        let present = try ImageCacheDirectory.sha256(of: target)
        guard present == sha256 else {
            throw WispError(.alreadyExists, "\(target): a different cached disk (sha256:\(present.prefix(12))...) has this name; it is not replaced, since instances may back onto it")
        }
        return true
    }

    /// Writes (or rewrites, for `lastUsed`) a record atomically.
    public func write(_ record: CachedCatalogImage) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(record)
        let output = try AtomicOutput(path: "\(path)/\(record.file).json", permissions: 0o644)
        do {
            try data.withUnsafeBytes { try output.file.write($0, at: 0) }
            try output.commit()
        } catch {
            output.discard()
            throw error
        }
    }

    /// Marks an image as used now (what `prune --older-than` looks at). A hint, not data:
    /// replaced atomically but not fsynced (an fsync here was most of what resolving a
    /// cached name cost `wisp run`), and skipped within a minute of the last mark.
    func touch(_ record: CachedCatalogImage) -> CachedCatalogImage {
        let now = Date()
        guard now.timeIntervalSince(record.lastUsed) > 60 else { return record }
        var used = record
        used.lastUsed = now
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let data = try? encoder.encode(used) {
            try? data.write(to: URL(fileURLWithPath: "\(path)/\(used.file).json"), options: .atomic)
        }
        return used
    }

    /// Removes an image: the record first (the disk is then no longer listed), then the disk.
    /// Returns the bytes freed.
    public func remove(_ image: CachedCatalogImage) -> UInt64 {
        let disk = diskPath(image)
        let held = Self.allocatedBytes(disk)
        try? FileManager.default.removeItem(atPath: disk + ".json")
        try? FileManager.default.removeItem(atPath: disk)
        return held
    }

    /// Partial downloads in the staging area and their bytes.
    public func partialDownloads() -> [(path: String, bytes: UInt64)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: staging) else { return [] }
        return names.filter { $0.hasSuffix(".part") }.map { ("\(staging)/\($0)", Self.allocatedBytes("\(staging)/\($0)")) }
    }

    /// Bytes the file takes on disk (holes are not counted).
    public static func allocatedBytes(_ path: String) -> UInt64 {
        var info = stat()
        guard stat(path, &info) == 0 else { return 0 }
        return UInt64(max(0, info.st_blocks)) * 512
    }
}
