import Foundation

/// Where Wisp keeps its state, following the XDG base directory rules.
public struct WispPaths: Sendable {
    public var dataHome: URL
    public var cacheHome: URL
    /// `$XDG_CONFIG_HOME/wisp`: config.yaml (defaults for `wisp run`).
    public var configHome: URL

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let home = environment["HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser
        let data = environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? home.appendingPathComponent(".local/share")
        let cache = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? home.appendingPathComponent(".cache")
        let config = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? home.appendingPathComponent(".config")
        configHome = config.appendingPathComponent("wisp")
        dataHome = data.appendingPathComponent("wisp")
        cacheHome = cache.appendingPathComponent("wisp")
    }

    public var instances: URL { dataHome.appendingPathComponent("instances") }
    public var images: URL { cacheHome.appendingPathComponent("images") }
    /// Warm templates (`WarmTemplateStore`): owner-only, they hold memory contents and a key.
    public var templates: URL { dataHome.appendingPathComponent("templates") }
}
