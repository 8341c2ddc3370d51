import Foundation
import WispCore

/// A user name and password for a registry, read from the files podman, skopeo and docker
/// write (`auths.HOST.auth`, base64 of `user:password`).
struct RegistryCredentials: Sendable, Equatable {
    var username: String
    var password: String

    /// `Basic base64(user:password)`.
    var basicAuthorization: String {
        "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
    }

    /// `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.docker/config.json`.
    static var defaultAuthFiles: [String] {
        let environment = ProcessInfo.processInfo.environment
        var files: [String] = []
        if let file = environment["REGISTRY_AUTH_FILE"], !file.isEmpty { files.append(file) }
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty { files.append("\(runtime)/containers/auth.json") }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        files.append("\(home)/.docker/config.json")
        return files
    }

    /// The first credentials any of `files` holds for `host`; a file that is missing is
    /// skipped, one that is unreadable or malformed is an error naming it.
    static func lookup(host: String, files: [String]) throws -> RegistryCredentials? {
        let wanted = normalise(host)
        for file in files {
            guard FileManager.default.fileExists(atPath: file) else { continue }
            let handle = try PosixFile(path: file, mode: .readOnly)
            defer { handle.close() }
            let size = try handle.size()
            guard size <= 1 << 20 else { throw WispError.corrupt(file, "auth file", "larger than 1 MiB") }
            var bytes = [UInt8](repeating: 0, count: Int(size))
            try bytes.withUnsafeMutableBytes { try handle.read(into: $0, at: 0) }
            struct AuthFile: Decodable {
                struct Entry: Decodable { var auth: String? }
                var auths: [String: Entry]?
            }
            let parsed: AuthFile
            do { parsed = try JSONDecoder().decode(AuthFile.self, from: Data(bytes)) } catch {
                throw WispError(.corrupt, "\(file): not a registry auth file (expected {\"auths\": {HOST: {\"auth\": BASE64}}})")
            }
            for (key, entry) in parsed.auths ?? [:] where normalise(key) == wanted {
                guard let auth = entry.auth, !auth.isEmpty else { continue }
                guard let decoded = Data(base64Encoded: auth), let text = String(data: decoded, encoding: .utf8),
                      let colon = text.firstIndex(of: ":") else {
                    throw WispError(.corrupt, "\(file): auths.\(key).auth is not base64 of user:password")
                }
                return RegistryCredentials(username: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
            }
        }
        return nil
    }

    /// `https://index.docker.io/v1/`, `registry-1.docker.io` and `docker.io` are one host;
    /// schemes and paths in keys are ignored.
    static func normalise(_ key: String) -> String {
        var text = key
        for scheme in ["https://", "http://"] where text.hasPrefix(scheme) { text.removeFirst(scheme.count) }
        if let slash = text.firstIndex(of: "/") { text = String(text[..<slash]) }
        text = text.lowercased()
        return ["index.docker.io", "registry-1.docker.io"].contains(text) ? "docker.io" : text
    }
}
