import Foundation
import OCI
import WispCore

/// A cached base disk made from a container image, and what was found building it.
public struct ContainerBaseDisk: Sendable, Equatable {
    /// A raw GPT disk in the cache; never written after it appears.
    public var path: String
    public var report: ContainerDiskReport
    /// True when this call built it (false: it was already cached).
    public var built: Bool
}

/// The one place a container reference becomes a base disk: pull (every blob verified
/// into the shared blob store), then the disk for that image and those options, from the
/// cache or built into it. `wisp image convert REF` exports this disk; `wisp run REF`
/// (through `OCIImageSource`) boots an overlay on it; `wisp inspect REF` reads it.
///
/// Entries are keyed by the manifest digest (the config digest for docker archives) and
/// the options, so a tag that moves gets a new disk and the same image never builds
/// twice. Each entry is `<digest>-<options>.raw` with a `.json` report beside it; the
/// report is written after the disk, both atomically, and an entry counts only when both
/// are there, so nothing half-written is ever used. An entry is built under a lock of its
/// own (`.<entry>.lock`): concurrent commands build it once.
public struct ContainerDiskCache: Sendable {
    public let directory: String
    public var store: OCIBlobStore

    /// `images` is the image cache (`$XDG_CACHE_HOME/wisp/images`); disks go in its `oci/`.
    public init(images: ImageCacheDirectory, store: OCIBlobStore = OCIBlobStore(root: OCIBlobStore.defaultRoot)) {
        directory = images.path + "/oci"
        self.store = store
    }

    public func baseDisk(for reference: String, pull: OCIPullOptions = OCIPullOptions(),
                         options: ContainerDiskOptions = ContainerDiskOptions(), requireKernel: Bool = false,
                         announce: (@Sendable (String) -> Void)? = nil) async throws -> ContainerBaseDisk {
        let image = try await OCIPuller(store: store, options: pull).pull(try OCIReference.parse(reference))
        let digest = image.manifestDigest ?? image.configDigest
        let path = "\(directory)/\(entryName(digest: digest, options: options)).raw"
        let reportPath = path.dropLast(4) + ".json"
        if let report = try? cachedReport(String(reportPath)), FileManager.default.fileExists(atPath: path) {
            try check(report, requireKernel: requireKernel)
            announce?("using the cached disk of \(reference) (\(digest)): nothing to convert")
            return ContainerBaseDisk(path: path, report: report, built: false)
        }
        try ImageCacheDirectory(path: directory).create()
        // Two commands on the same image at once: one builds, the other waits and uses it
        // (a disk replaced under a running instance's overlay would be a different file).
        let entry = (path as NSString).lastPathComponent.dropLast(4)
        let lock = try FileLock.exclusive("\(directory)/.\(entry).lock", waiting: { _ in
            announce?("waiting for another wisp that is building the disk of \(reference)")
        })
        defer { lock.release() }
        if let report = try? cachedReport(String(reportPath)), FileManager.default.fileExists(atPath: path) {
            try check(report, requireKernel: requireKernel)
            return ContainerBaseDisk(path: path, report: report, built: false)
        }
        announce?("building a disk from \(reference) (\(digest))")
        var report = try ContainerDiskBuilder.build(image, reference: reference, options: options,
                                                    requireKernel: requireKernel, to: path)
        report.reference = reference
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicOutput.write(Array(try encoder.encode(report)), to: String(reportPath))
        return ContainerBaseDisk(path: path, report: report, built: true)
    }

    func entryName(digest: OCIDigest, options: ContainerDiskOptions) -> String {
        var hasher = SHA256()
        hasher.update(Array(options.cacheKey.utf8))
        return "\(digest.hex)-\(SHA256.hex(hasher.finalize()).prefix(12))"
    }

    func cachedReport(_ path: String) throws -> ContainerDiskReport {
        let file = try PosixFile(path: path, mode: .readOnly)
        defer { file.close() }
        let size = try file.size()
        guard size <= 4 << 20 else { throw WispError.corrupt(path, "cached disk report", "larger than 4 MiB") }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        try bytes.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        return try JSONDecoder().decode(ContainerDiskReport.self, from: Data(bytes))
    }

    func check(_ report: ContainerDiskReport, requireKernel: Bool) throws {
        if requireKernel, report.bootEntry == nil {
            throw WispError(.notFound, "\(report.reference): the image has no kernel (looked for /usr/lib/modules/*/vmlinuz and /boot/vmlinuz-*), so the disk is not bootable")
        }
    }
}
