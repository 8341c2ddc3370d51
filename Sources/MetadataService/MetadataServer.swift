import Foundation
import CloudInit
import Machine
import WispCore

/// Wisp's metadata listener for one booting guest: serves the NoCloud-net seed
/// (`ds=nocloud;s=http://10.0.2.2:PORT/TOKEN/`) and receives cloud-init's phone_home POST,
/// which is half of the readiness signal. User-mode networking maps the guest's 10.0.2.2
/// to the host's 127.0.0.1.
///
/// 127.0.0.1 is open to every local user, so every path lives under a random 128-bit
/// token: without it the seed (which holds the guest's SSH host private key) is not
/// served and a phone_home is ignored. The token travels only inside owner-only files (the
/// seed disk, the SMBIOS table file, instance.json), never on a command line that
/// /proc shows to other users.
public final class MetadataServer: @unchecked Sendable {
    public static let phoneHomeLeaf = "phone-home"
    public let token: String
    private var server: HTTPServer?
    private let phoneHome = LockedValue<[String: String]?>(nil)
    private let requests = LockedValue<[String]>([])

    public var port: UInt16 { server?.port ?? 0 }

    /// `seed` nil serves phone_home only (the seed travels on a disk). `token` is kept
    /// across restarts of an instance whose guest reads its seed over the network; nil makes
    /// a new one.
    public init(seed: NoCloudSeed?, port: UInt16 = 0, token: String? = nil) throws {
        let token = token ?? Self.newToken()
        self.token = token
        let routes = seed.map(SeedRoutes.init)
        let phoneHome = self.phoneHome
        let requests = self.requests
        // An empty token is the first release's layout (seed at the root), kept only so its
        // NoCloud-net instances still start.
        let prefix = token.isEmpty ? "/" : "/\(token)/"
        server = try HTTPServer(port: port) { request in
            requests.withLock { $0.append("\(request.method) \(request.path)") }
            // Anything outside this guest's token is answered as if nothing were here.
            guard request.path.hasPrefix(prefix) else { return .notFound() }
            let leaf = String(request.path.dropFirst(prefix.count))
            if request.method == "POST", leaf.hasPrefix(MetadataServer.phoneHomeLeaf) {
                phoneHome.withLock { $0 = MetadataServer.parseForm(request.body) }
                return HTTPResponse(status: 200, reason: "OK", body: Array("ok\n".utf8))
            }
            if request.method == "GET" || request.method == "HEAD", let routes, let body = routes.body(for: leaf) {
                return HTTPResponse(status: 200, reason: "OK", body: request.method == "HEAD" ? [] : body)
            }
            return .notFound()
        }
    }

    /// The seed URL as the guest sees it.
    public var guestSeedURL: String { UserModeNetwork.hostURL(port: port) + pathPrefix }
    public var guestPhoneHomeURL: String { UserModeNetwork.hostURL(port: port) + pathPrefix + Self.phoneHomeLeaf }
    private var pathPrefix: String { token.isEmpty ? "/" : "/\(token)/" }

    /// 128 bits from the system's CSPRNG (getrandom), as hex.
    static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let value = generator.next() as UInt64
            let hex = String(value, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// The phone_home form fields (instance_id, hostname, pub_key_*), once posted.
    public var phoneHomeData: [String: String]? { phoneHome.withLock { $0 } }
    public var requestLog: [String] { requests.withLock { $0 } }

    public func stop() { server?.stop() }

    /// `application/x-www-form-urlencoded`, as cloud-init's phone_home posts it.
    static func parseForm(_ body: [UInt8]) -> [String: String] {
        var result: [String: String] = [:]
        for pair in String(decoding: body.prefix(1 << 20), as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
            }
            if let key = parts.first { result[key] = parts.count > 1 ? parts[1] : "" }
        }
        return result
    }
}
