import DiskImage
import Foundation
import WispCore

/// An image named in the catalog (`wisp run debian-13`). A cached build is used as it is,
/// with no network (`refresh` makes `wisp image pull` look for a newer build); otherwise
/// the name is resolved to a build, URL and published digest, downloaded into the staging
/// area (resumed after a cut), verified, unpacked and moved into the cache atomically.
public struct CatalogImageSource: ImageSource {
    public let reference: String
    public let entry: CatalogEntry
    public let architecture: String
    public var mirror: String?
    public var refresh = false
    public var stallSeconds = 0

    public init(reference: String, entry: CatalogEntry, architecture: String, mirror: String? = nil) {
        self.reference = reference
        self.entry = entry
        self.architecture = architecture
        self.mirror = mirror
    }

    public func resolve(_ context: ImageResolveContext) async throws -> ResolvedImage {
        try await fetch(context).resolved
    }

    /// The cached image and its record (downloading it when needed).
    public func fetch(_ context: ImageResolveContext) async throws -> (resolved: ResolvedImage, record: CachedCatalogImage, downloaded: Bool) {
        let cache = CatalogCache(images: context.cache)
        if !refresh, let cached = cache.newest(name: entry.name, architecture: architecture) {
            return (try use(cached, cache: cache, context), cached, false)
        }
        var resolver = CatalogResolver(entry: entry, architecture: architecture, mirror: mirror)
        resolver.stallSeconds = stallSeconds
        context.announce?("resolving \(entry.name) (\(architecture))")
        let resolution = try await resolver.resolve()
        if let cached = cache.images().first(where: { $0.resolution.name == entry.name && $0.resolution.architecture == architecture
                                                    && $0.resolution.build == resolution.build && $0.resolution.digest == resolution.digest }) {
            return (try use(cached, cache: cache, context), cached, false)
        }
        try cache.create()
        let lockName = HTTPImageSource.sanitize("\(entry.name)-\(architecture)")
        let lock = try FileLock.exclusive("\(cache.path)/.\(lockName).lock", waiting: { _ in
            context.announce?("waiting for another wisp that is downloading \(entry.name)")
        })
        defer { lock.release() }
        // Another wisp may have fetched this build while this one waited for the lock.
        if let cached = cache.images().first(where: { $0.resolution.name == entry.name && $0.resolution.architecture == architecture
                                                    && $0.resolution.build == resolution.build && $0.resolution.digest == resolution.digest }) {
            return (try use(cached, cache: cache, context), cached, false)
        }
        guard let url = URL(string: resolution.url) else { throw WispError(.invalidArgument, "\(resolution.url) is not a valid URL") }
        let downloadName = url.lastPathComponent
        let leaf = CatalogCache.leaf(resolution, downloadName: downloadName)
        // Keyed by the published digest: a partial file of another build is never resumed.
        let part = "\(cache.staging)/\(resolution.digest.prefix(16))-\(HTTPImageSource.sanitize(downloadName)).part"
        context.announce?("downloading \(entry.name) \(resolution.build) (\(architecture)) from \(resolution.url)")
        var download = StagedDownload(url: url, partPath: part, algorithm: resolution.algorithm)
        download.stallSeconds = stallSeconds
        let target = "\(cache.path)/\(leaf)"
        // A disk already under this name (same build and digest, its record lost) is reused, and
        // never removed below: instances may back onto it.
        let existedBefore = FileManager.default.fileExists(atPath: target)
        // A compressed image is unpacked while it downloads (from a fresh start only; a
        // resumed one is unpacked after). The result is kept only if the download verifies.
        var streamed: (output: AtomicOutput, unpacking: Task<(sha256: String, size: UInt64), Error>, feed: GrowingFile)?
        if ImageUnpacker.packing(of: downloadName) != nil, (try? FileManager.default.attributesOfItem(atPath: part)) == nil {
            _ = try download.openPart()
            let feed = try GrowingFile(path: part)
            let output = try AtomicOutput(path: target, permissions: 0o644)
            let unpacking = Task.detached { () throws -> (sha256: String, size: UInt64) in
                try await Self.onThread { try ImageUnpacker.unpack(growing: feed, into: output.file) }
            }
            download.onWrite = { feed.advance(to: $0) }
            streamed = (output, unpacking, feed)
        }
        let result: StagedDownload.Result
        do {
            result = try await download.run(progress: context.progress, announce: context.announce)
            streamed?.feed.finish()
        } catch {
            if let streamed {
                streamed.feed.fail()
                _ = try? await streamed.unpacking.value
                streamed.output.discard()
            }
            throw error
        }
        guard result.digest == resolution.digest else {
            if let streamed {
                _ = try? await streamed.unpacking.value
                streamed.output.discard()
            }
            try? FileManager.default.removeItem(atPath: part)
            throw WispError(.digestMismatch, "\(resolution.url): the download has \(resolution.algorithm.rawValue):\(result.digest.prefix(16))..., "
                            + "\(URL(fileURLWithPath: resolution.checksumURL).lastPathComponent) says \(resolution.digest.prefix(16))... (nothing was cached)")
        }
        var sha256 = ""
        var size: UInt64 = 0
        var unpackedWhileDownloading = false
        if let streamed {
            if let done = try? await streamed.unpacking.value {
                (sha256, size) = done
                if try CatalogCache.alreadyCached(target, sha256: sha256) { streamed.output.discard() } else { try streamed.output.commit() }
                try? FileManager.default.removeItem(atPath: part)
                unpackedWhileDownloading = true
                context.announce?("unpacked \(downloadName) while downloading (\(ByteSize.format(size)))")
            } else {
                streamed.output.discard()
            }
        }
        if unpackedWhileDownloading {
            // Done above.
        } else if ImageUnpacker.packing(of: downloadName) != nil {
            context.announce?("unpacking \(downloadName)")
            let output = try AtomicOutput(path: target, permissions: 0o644)
            do {
                (sha256, size) = try ImageUnpacker.unpack(part, into: output.file)
                if try CatalogCache.alreadyCached(target, sha256: sha256) { output.discard() } else { try output.commit() }
            } catch {
                output.discard()
                throw error
            }
            try? FileManager.default.removeItem(atPath: part)
        } else {
            sha256 = resolution.algorithm == .sha256 ? result.digest : try ImageCacheDirectory.sha256(of: part)
            size = result.size
            chmod(part, 0o644)
            // link() never replaces: a disk already there is kept (instances back onto it).
            if link(part, target) != 0 {
                guard errno == EEXIST else { throw WispError.posix("link", target, errno: errno) }
                _ = try CatalogCache.alreadyCached(target, sha256: sha256)
            }
            unlink(part)
        }
        if let expected = context.expectedDigest, expected != sha256 {
            // --digest pins the disk itself: a newer build than the one pinned is not it.
            if !existedBefore { try? FileManager.default.removeItem(atPath: target) }
            throw WispError(.digestMismatch, "\(entry.name) \(resolution.build): the disk has sha256:\(sha256), --digest asked for sha256:\(expected) (nothing was cached)")
        }
        let now = Date()
        let record = CachedCatalogImage(resolution: resolution, file: leaf, sha256: sha256, size: size, downloaded: now, lastUsed: now)
        do {
            try cache.write(record)
        } catch {
            if !existedBefore { try? FileManager.default.removeItem(atPath: target) }
            throw error
        }
        context.announce?("verified \(entry.name) \(resolution.build): \(resolution.algorithm.rawValue) from \(URL(fileURLWithPath: resolution.checksumURL).lastPathComponent), \(resolution.trust.rawValue)")
        return (try resolved(record, cache: cache), record, true)
    }

    func use(_ cached: CachedCatalogImage, cache: CatalogCache, _ context: ImageResolveContext) throws -> ResolvedImage {
        if let expected = context.expectedDigest, expected != cached.sha256 {
            throw WispError(.digestMismatch, "\(entry.name): the cached build \(cached.resolution.build) has sha256:\(cached.sha256), expected sha256:\(expected)")
        }
        context.announce?("using cached \(entry.name) \(cached.resolution.build) (sha256:\(cached.sha256.prefix(12))...)")
        return try resolved(cache.touch(cached), cache: cache)
    }

    func resolved(_ record: CachedCatalogImage, cache: CatalogCache) throws -> ResolvedImage {
        let path = cache.diskPath(record)
        var image = ResolvedImage(path: path, format: try MachineArchiveProbe.diskFormat(of: path), sha256: record.sha256,
                                  origin: .download(url: record.resolution.url))
        image.build = record.resolution.build
        return image
    }

    /// Runs blocking work (libarchive reading a growing file waits for the download) on a
    /// thread of its own, not on the cooperative pool.
    static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.name = "wisp-unpack"
            thread.start()
        }
    }
}
