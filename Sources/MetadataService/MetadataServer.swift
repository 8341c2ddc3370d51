import Foundation
import CloudInit
import Machine
import WispCore

/// Wisp's metadata listener for one booting guest: serves the NoCloud-net seed
/// (`ds=nocloud;s=http://<UserModeNetwork.host>:PORT/`) and receives cloud-init's phone_home
/// POST, which is half of the readiness signal. User-mode networking maps the guest's
/// `UserModeNetwork.host` to the host's 127.0.0.1, so the listener never has to be reachable
/// from anywhere else.
public final class MetadataServer: @unchecked Sendable {
    public static let phoneHomePath = "/phone-home"
    private var server: HTTPServer?
    private let phoneHome = LockedValue<[String: String]?>(nil)
    private let requests = LockedValue<[String]>([])

    public var port: UInt16 { server?.port ?? 0 }

    /// `seed` nil serves phone_home only (the seed travels on a disk).
    public init(seed: NoCloudSeed?, port: UInt16 = 0) throws {
        let routes = seed.map(SeedRoutes.init)
        let phoneHome = self.phoneHome
        let requests = self.requests
        server = try HTTPServer(port: port) { request in
            requests.withLock { $0.append("\(request.method) \(request.path)") }
            if request.method == "POST", request.path.hasPrefix(MetadataServer.phoneHomePath) {
                phoneHome.withLock { $0 = MetadataServer.parseForm(request.body) }
                return HTTPResponse(status: 200, reason: "OK", body: Array("ok\n".utf8))
            }
            if request.method == "GET" || request.method == "HEAD", let routes, let body = routes.body(for: request.path) {
                return HTTPResponse(status: 200, reason: "OK", body: request.method == "HEAD" ? [] : body)
            }
            return .notFound()
        }
    }

    /// The seed URL as the guest sees it.
    public var guestSeedURL: String { UserModeNetwork.hostURL(port: port) + "/" }
    public var guestPhoneHomeURL: String { UserModeNetwork.hostURL(port: port) + Self.phoneHomePath }

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
