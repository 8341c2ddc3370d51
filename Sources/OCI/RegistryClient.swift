import Foundation
import WispCore

/// The Distribution v2 API of one registry, for one repository: GETs with the right
/// `Accept`, anonymous or credentialed bearer tokens from the registry's challenge (reused
/// until they expire), Basic credentials where the registry asks for them, and redirects
/// followed by hand so credentials never go to another host.
final class RegistryClient: @unchecked Sendable {
    let reference: RegistryReference
    let tlsVerify: Bool?
    let authFiles: [String]
    let stallTimeoutSeconds: Int
    let name: String

    static let maxRedirects = 10
    static let maxErrorBody = 64 << 10

    private struct Token { var value: String; var expires: Date }
    private struct State {
        var scheme: String?
        var token: Token?
        var basic: String?
        var credentials: RegistryCredentials??
    }
    private let state = LockedValue(State())

    init(reference: RegistryReference, tlsVerify: Bool?, authFiles: [String], stallTimeoutSeconds: Int) {
        self.reference = reference
        self.tlsVerify = tlsVerify
        self.authFiles = authFiles
        self.stallTimeoutSeconds = stallTimeoutSeconds
        name = "docker://\(reference)"
    }

    /// Loopback registries may speak plain HTTP, as docker allows; anything else only
    /// with `tlsVerify: false`.
    static func isLoopback(_ host: String) -> Bool {
        var name = host
        if name.hasPrefix("["), let close = name.firstIndex(of: "]") {
            name = String(name[name.index(after: name.startIndex)..<close])
        } else if let colon = name.lastIndex(of: ":"), name.firstIndex(of: ":") == colon {
            name = String(name[..<colon])
        }
        if name == "localhost" || name == "::1" { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// The scheme chosen by the first request, once there was one.
    var currentScheme: String? { state.withLock { $0.scheme } }

    private var plainHTTPAllowed: Bool { tlsVerify == false || Self.isLoopback(reference.apiHost) }

    private func credentials() throws -> RegistryCredentials? {
        if let known = state.withLock({ $0.credentials }) { return known }
        let found = try RegistryCredentials.lookup(host: reference.host, files: authFiles)
        state.withLock { $0.credentials = .some(found) }
        return found
    }

    /// https, or http where it is allowed and the registry speaks it. A loopback registry
    /// is asked over plain HTTP first (a registry answers /v2/ with 200 or 401; a TLS
    /// server answers plain HTTP with 400 at once), so a plain one never waits on a TLS
    /// handshake it will not answer. Elsewhere (tlsVerify false) https comes first, as
    /// skopeo does, and plain HTTP only when TLS fails.
    private func scheme() async throws -> String {
        if let known = state.withLock({ $0.scheme }) { return known }
        guard plainHTTPAllowed else { return "https" }
        func answers(_ scheme: String) async -> Int? {
            var probe = HTTPExchange(url: "\(scheme)://\(reference.apiHost)/v2/")
            probe.verifyTLS = tlsVerify ?? true
            probe.stallTimeoutSeconds = min(stallTimeoutSeconds, 10)
            probe.totalTimeoutSeconds = 10
            return try? await probe.perform { _, _ in }.status
        }
        let chosen: String
        if Self.isLoopback(reference.apiHost) {
            let status = await answers("http")
            chosen = status == 200 || status == 401 ? "http" : "https"
        } else {
            chosen = await answers("https") == nil ? "http" : "https"
        }
        state.withLock { $0.scheme = chosen }
        return chosen
    }

    /// GETs `/v2/<repository>/<path>`, handling auth challenges and redirects; `body` gets
    /// the final 2xx response's bytes. Returns that response. Other statuses throw
    /// errors of the matching kind, with the registry's own error text when it sent one.
    ///
    /// Push uses the same path with another `method`, an upload `requestBody`, and for the
    /// blob upload's second step an absolute `url` the registry gave (which must stay on
    /// the registry's host); its requests follow no redirects.
    func get(_ path: String, method: String = "GET", url absolute: String? = nil, requestBody: HTTPExchange.Body = .none,
             accept: [String] = [], extraHeaders: [String] = [], totalTimeoutSeconds: Int = 0,
             body: @escaping (HTTPExchange.Response, UnsafeRawBufferPointer) throws -> Void) async throws -> HTTPExchange.Response {
        let chosen = try await scheme()
        var url = absolute ?? "\(chosen)://\(reference.apiHost)/v2/\(reference.repository)/\(path)"
        var sameHost = true
        var authorised = false
        var hops = 0
        while true {
            var headers = extraHeaders
            if !accept.isEmpty { headers.append("Accept: \(accept.joined(separator: ", "))") }
            if sameHost, let authorization = try currentAuthorization() { headers.append("Authorization: \(authorization)") }
            var exchange = HTTPExchange(url: url, headers: headers)
            exchange.method = method
            exchange.body = requestBody
            exchange.verifyTLS = tlsVerify ?? true
            exchange.stallTimeoutSeconds = stallTimeoutSeconds
            exchange.totalTimeoutSeconds = totalTimeoutSeconds
            let errorBody = LockedValue<[UInt8]>([])
            let response = try await exchange.perform { response, bytes in
                if (200..<300).contains(response.status) {
                    try body(response, bytes)
                } else {
                    errorBody.withLock { if $0.count < Self.maxErrorBody { $0 += bytes.prefix(Self.maxErrorBody - $0.count) } }
                }
            }
            switch response.status {
            case 200..<300:
                return response
            case 301, 302, 303, 307, 308 where method == "GET" || method == "HEAD":
                hops += 1
                guard hops <= Self.maxRedirects else {
                    throw WispError(.failed, "\(name): the registry redirected more than \(Self.maxRedirects) times (a redirect loop?)")
                }
                guard let location = response.header("location"), let next = URL(string: location, relativeTo: URL(string: url))?.absoluteURL,
                      let scheme = next.scheme?.lowercased(), scheme == "https" || scheme == "http", let host = next.host else {
                    throw WispError(.corrupt, "\(name): the registry sent HTTP \(response.status) without a usable Location")
                }
                let authority = next.port.map { "\(host):\($0)" } ?? host
                if scheme == "http" && !(tlsVerify == false || Self.isLoopback(authority)) {
                    throw WispError(.permissionDenied, "\(name): refused a redirect to plain HTTP (\(HTTPExchange.redact(next.absoluteString))); use tlsVerify false to allow it")
                }
                // Credentials stay with the registry: a blob's storage elsewhere (S3, a
                // CDN) gets a signed URL instead.
                sameHost = sameHost && authority.lowercased() == reference.apiHost.lowercased()
                url = next.absoluteString
            case 401 where !authorised:
                authorised = true
                try await authenticate(response, body: errorBody.withLock { $0 })
            case 401, 403:
                let detail = Self.registryError(errorBody.withLock { $0 })
                let hint = try credentials() == nil ? " (no credentials for \(reference.host) in \(authFiles.joined(separator: ", ")))" : " (the credentials for \(reference.host) were refused)"
                throw WispError(.permissionDenied, "\(name): access denied (HTTP \(response.status))\(detail)\(hint)")
            case 404:
                throw WispError(.notFound, "\(name): \(path.hasPrefix("manifests/") ? "no such image or tag" : "blob not found") (HTTP 404)\(Self.registryError(errorBody.withLock { $0 }))")
            case 429:
                throw WispError(.busy, "\(name): the registry is rate-limiting (HTTP 429), try again later")
            default:
                throw WispError(.failed, "\(name): the registry answered HTTP \(response.status)\(Self.registryError(errorBody.withLock { $0 }))")
            }
        }
    }

    private func currentAuthorization() throws -> String? {
        let current = state.withLock { $0 }
        if let token = current.token, token.expires > Date() { return "Bearer \(token.value)" }
        return current.basic
    }

    /// Answers a 401's challenge: a bearer token from the realm (with Basic credentials
    /// when the auth files have some), or Basic credentials directly.
    private func authenticate(_ response: HTTPExchange.Response, body: [UInt8]) async throws {
        let challenges = (response.headers["www-authenticate"] ?? []).compactMap(RegistryAuthChallenge.init)
        if let bearer = challenges.first(where: { $0.scheme == "bearer" }) {
            try await fetchToken(bearer)
        } else if challenges.contains(where: { $0.scheme == "basic" }) {
            guard let credentials = try credentials() else {
                throw WispError(.permissionDenied, "\(name): the registry wants a user name and password and none are in \(authFiles.joined(separator: ", "))")
            }
            state.withLock { $0.basic = credentials.basicAuthorization }
        } else {
            throw WispError(.permissionDenied, "\(name): access denied (HTTP 401) without a challenge Wisp can answer\(Self.registryError(body))")
        }
    }

    private func fetchToken(_ challenge: RegistryAuthChallenge) async throws {
        guard let realm = challenge.parameters["realm"], var components = URLComponents(string: realm),
              let scheme = components.scheme?.lowercased(), scheme == "https" || scheme == "http", let host = components.host else {
            throw WispError(.corrupt, "\(name): the registry's bearer challenge has no usable realm")
        }
        let authority = components.port.map { "\(host):\($0)" } ?? host
        if scheme == "http" && !(tlsVerify == false || Self.isLoopback(authority)) {
            throw WispError(.permissionDenied, "\(name): refused to fetch a token over plain HTTP from \(realm)")
        }
        var query = components.queryItems ?? []
        if let service = challenge.parameters["service"] { query.append(URLQueryItem(name: "service", value: service)) }
        query.append(URLQueryItem(name: "scope", value: challenge.parameters["scope"] ?? "repository:\(reference.repository):pull"))
        components.queryItems = query
        guard let url = components.url?.absoluteString else {
            throw WispError(.corrupt, "\(name): the registry's bearer challenge has no usable realm")
        }
        var headers: [String] = []
        if let credentials = try credentials() { headers.append("Authorization: \(credentials.basicAuthorization)") }
        var exchange = HTTPExchange(url: url, headers: headers)
        exchange.verifyTLS = tlsVerify ?? true
        exchange.stallTimeoutSeconds = stallTimeoutSeconds
        exchange.totalTimeoutSeconds = 60
        let collected = LockedValue<[UInt8]>([])
        let response = try await exchange.perform { _, bytes in
            try collected.withLock {
                guard $0.count + bytes.count <= 1 << 20 else { throw WispError(.corrupt, "\(self.name): the token answer is larger than 1 MiB") }
                $0 += bytes
            }
        }
        let bytes = collected.withLock { $0 }
        guard (200..<300).contains(response.status) else {
            throw WispError(.permissionDenied, "\(name): the token service \(HTTPExchange.redact(realm)) answered HTTP \(response.status)\(Self.registryError(bytes))")
        }
        struct TokenAnswer: Decodable {
            var token: String?
            var access_token: String?
            var expires_in: Int?
        }
        let answer = try OCIJSON.decode(TokenAnswer.self, bytes, source: name, what: "token answer")
        guard let value = answer.token ?? answer.access_token, !value.isEmpty, !value.contains(where: { $0.isNewline }) else {
            throw WispError(.corrupt, "\(name): the token service sent no token")
        }
        // The distribution spec's default lifetime is 60 s; renew a little early.
        let lifetime = max(10, min(answer.expires_in ?? 60, 24 * 3600)) - 5
        state.withLock { $0.token = Token(value: value, expires: Date().addingTimeInterval(TimeInterval(lifetime))) }
    }

    /// ` (CODE: message)` from a registry's JSON error body, when it has one.
    static func registryError(_ body: [UInt8]) -> String {
        struct Errors: Decodable {
            struct Item: Decodable { var code: String?; var message: String? }
            var errors: [Item]?
        }
        guard let item = (try? JSONDecoder().decode(Errors.self, from: Data(body)))?.errors?.first else { return "" }
        let text = [item.code, item.message].compactMap { $0 }.joined(separator: ": ")
        return text.isEmpty ? "" : " (\(OCIDigest.clip(text)))"
    }
}
