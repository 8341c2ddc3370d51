import CloudInit

/// Maps NoCloud-net request paths to seed files. cloud-init fetches `<seedfrom>meta-data`,
/// `user-data`, `vendor-data` and `network-config`; anything else is 404.
public struct SeedRoutes: Sendable {
    public let seed: NoCloudSeed

    public init(seed: NoCloudSeed) { self.seed = seed }

    public func body(for path: String) -> [UInt8]? {
        let name = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        let leaf = name.split(separator: "/").last.map(String.init) ?? ""
        return seed.files.first(where: { $0.name == leaf })?.contents
    }
}
