import Foundation
import ImageSources
import Machine
import WispCore

/// The catalog as the commands see it: the built-in entries plus the user's images.d, the
/// mirrors from config.yaml, and which instances use which cached image (so `prune` never
/// removes a base an instance is backed by).
public struct CatalogImages: Sendable {
    public let paths: WispPaths

    public init(paths: WispPaths = WispPaths()) { self.paths = paths }

    public var userDirectory: String { paths.configHome.appendingPathComponent("images.d").path }
    public var cache: CatalogCache { CatalogCache(images: ImageCacheDirectory(path: paths.images.path)) }

    public func catalog() throws -> ImageCatalog {
        try ImageCatalog.load(userDirectory: userDirectory)
    }

    /// The catalog source for `image` when it is a catalog name and not a file that exists;
    /// nil for paths, URLs and container references. A bare word that is neither a file
    /// nor a name is an error that says which names are close.
    public func source(for image: String, architecture: GuestArchitecture?) throws -> CatalogImageSource? {
        guard !image.isEmpty, !image.contains("/"), !image.contains(":"), !FileManager.default.fileExists(atPath: image) else { return nil }
        let catalog = try self.catalog()
        guard let entry = catalog.entry(named: image) else {
            // A file name (disk.qcow2) that is missing is a missing file, not a mistyped name.
            let lower = image.lowercased()
            if [".qcow2", ".img", ".raw", ".vmdk", ".vhd", ".vhdx", ".vdi", ".ova", ".box", ".iso", ".xz", ".gz", ".zst", ".bz2", ".tar"]
                .contains(where: { lower.hasSuffix($0) }) { return nil }
            let suggestion = EditDistance.suggestion(for: image, among: catalog.allNames).map { " (did you mean \($0)?)" } ?? ""
            throw WispError.notFound("\(image): no such image file, and no image of that name in the catalog\(suggestion); `wisp images catalog` lists the names")
        }
        let arch = (architecture ?? GuestArchitecture.host ?? .x86_64).rawValue
        let mirror = try WispConfig.load(paths).mirrors?[entry.distribution]
        return CatalogImageSource(reference: image, entry: entry, architecture: arch, mirror: mirror)
    }

    /// Cached disk path → names of the instances whose base it is.
    public func users() -> [String: [String]] {
        let store = InstanceStore(paths: paths)
        var users: [String: [String]] = [:]
        for name in store.names() {
            guard let record = try? store.load(name) else { continue }
            let base = URL(fileURLWithPath: record.baseImagePath).standardizedFileURL.path
            users[base, default: []].append(name)
        }
        return users
    }

    public struct Pruned: Sendable {
        public var removed: [CachedCatalogImage] = []
        public var kept: [(image: CachedCatalogImage, instances: [String])] = []
        public var partials = 0
        public var bytes: UInt64 = 0
    }

    /// Removes cached images no instance uses: all of them with `all`, else the builds that
    /// a newer build of the same name and architecture has replaced; `olderThan` keeps what
    /// was used more recently. Partial downloads go too with `all`.
    public func prune(all: Bool, olderThan: TimeInterval?, now: Date = Date()) -> Pruned {
        var pruned = Pruned()
        let users = users()
        var newestSeen = Set<String>()
        for image in cache.images() {
            let key = "\(image.resolution.name)/\(image.resolution.architecture)"
            let isNewest = newestSeen.insert(key).inserted
            let path = URL(fileURLWithPath: cache.diskPath(image)).standardizedFileURL.path
            if let instances = users[path], !instances.isEmpty {
                pruned.kept.append((image, instances.sorted()))
                continue
            }
            if let olderThan, now.timeIntervalSince(image.lastUsed) < olderThan { continue }
            if !all && olderThan == nil && isNewest { continue }
            pruned.bytes += cache.remove(image)
            pruned.removed.append(image)
        }
        if all {
            for partial in cache.partialDownloads() {
                try? FileManager.default.removeItem(atPath: partial.path)
                pruned.bytes += partial.bytes
                pruned.partials += 1
            }
        }
        return pruned
    }
}
