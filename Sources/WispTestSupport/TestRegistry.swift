import Foundation
import MetadataService
import WispCore

/// Debian's docker-registry (the CNCF distribution registry) on 127.0.0.1 with a random
/// port, filesystem storage in a temporary directory and token auth: its realm is a token
/// endpoint served by Wisp's own HTTPServer that signs RS256 JWTs with a key made by
/// openssl (the registry checks them against the certificate in `rootcertbundle`).
/// Anyone may pull repositories outside `private/`; `wisp:secret` may pull and push all.
/// With `auth: false`: plain HTTP, no auth at all (what a local development registry is).
public final class TestRegistry: @unchecked Sendable {
    public static let user = "wisp"
    public static let password = "secret"
    public let directory: TemporaryDirectory
    public let port: UInt16
    let tokenServer: HTTPServer
    let process: Process
    let auth: Bool
    /// Token requests served, for checking that a pull reuses its token.
    public let tokenRequests = LockedValue(0)

    public var host: String { "127.0.0.1:\(port)" }

    public init(auth: Bool = true) throws {
        self.auth = auth
        directory = try TemporaryDirectory("wisp-registry")
        let key = directory.file("key.pem"), cert = directory.file("cert.pem")
        try ToolRunner.check("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                                         "-days", "2", "-subj", "/CN=wisp-test-token-issuer"])
        let der = try ToolRunner.check("openssl", ["x509", "-in", cert, "-outform", "DER"]).stdout.base64EncodedString()
        let counter = tokenRequests
        tokenServer = try HTTPServer { request in
            counter.withLock { $0 += 1 }
            return Self.token(for: request, key: key, certificate: der)
        }
        port = try Self.freePort()
        let authSection = auth ? """

        auth:
          token:
            realm: http://127.0.0.1:\(tokenServer.port)/token
            service: wisp-test-registry
            issuer: wisp-test-issuer
            rootcertbundle: \(cert)
        """ : ""
        let config = """
        version: 0.1
        log:
          level: error
        storage:
          filesystem:
            rootdirectory: \(directory.file("storage"))
        http:
          addr: 127.0.0.1:\(port)\(authSection)
        """
        try config.write(toFile: directory.file("config.yml"), atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: ToolRunner.locate("docker-registry") ?? "/usr/bin/docker-registry")
        process.arguments = ["serve", directory.file("config.yml")]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        try waitUntilServing()
    }

    deinit {
        process.terminate()
        process.waitUntilExit()
        tokenServer.stop()
    }

    private func waitUntilServing() throws {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let socket = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(socket)
            if connected == 0 { return }
            guard process.isRunning else { throw WispError(.processFailed, "docker-registry exited \(process.terminationStatus) at start") }
            usleep(50_000)
        }
        throw WispError(.timedOut, "docker-registry did not listen on \(host) within 20 s")
    }

    public static func freePort() throws -> UInt16 {
        let server = try HTTPServer { _ in .notFound() }
        let port = server.port
        server.stop()
        return port
    }

    /// Pushes the fixture there as `repository:tag` with skopeo.
    public func push(_ source: String, as repository: String) throws {
        let credentials = auth ? ["--dest-creds", "\(Self.user):\(Self.password)"] : []
        try ToolRunner.check("skopeo", ["copy", "--quiet", "--dest-tls-verify=false"] + credentials + [source, "docker://\(host)/\(repository)"])
    }

    /// The token endpoint: grants what the scope asks for to `wisp:secret`, pull of
    /// non-private repositories to anyone, nothing else.
    static func token(for request: HTTPRequest, key: String, certificate: String) -> HTTPResponse {
        let components = URLComponents(string: "http://x\(request.path)")
        let scopes = components?.queryItems?.filter { $0.name == "scope" }.compactMap(\.value) ?? []
        var authenticated = false
        if let header = request.headers["authorization"], header.hasPrefix("Basic "),
           let decoded = Data(base64Encoded: String(header.dropFirst(6))), String(decoding: decoded, as: UTF8.self) == "\(user):\(password)" {
            authenticated = true
        } else if request.headers["authorization"] != nil {
            return HTTPResponse(status: 401, reason: "Unauthorized", contentType: "application/json", body: Array(#"{"errors":[{"code":"UNAUTHORIZED"}]}"#.utf8))
        }
        var access: [[String: Any]] = []
        for scope in scopes {
            let parts = scope.split(separator: ":")
            guard parts.count == 3, parts[0] == "repository" else { continue }
            let wanted = parts[2].split(separator: ",").map(String.init)
            let granted = authenticated ? wanted : (parts[1].hasPrefix("private/") ? [] : wanted.filter { $0 == "pull" })
            access.append(["type": "repository", "name": String(parts[1]), "actions": granted])
        }
        let now = Int(Date().timeIntervalSince1970)
        let header: [String: Any] = ["alg": "RS256", "typ": "JWT", "x5c": [certificate]]
        let claims: [String: Any] = ["iss": "wisp-test-issuer", "sub": authenticated ? user : "", "aud": "wisp-test-registry",
                                     "exp": now + 300, "nbf": now - 10, "iat": now, "jti": UUID().uuidString, "access": access]
        do {
            let signingInput = try base64URL(JSONSerialization.data(withJSONObject: header)) + "." + base64URL(JSONSerialization.data(withJSONObject: claims))
            let signature = try ToolRunner.check("openssl", ["dgst", "-sha256", "-sign", key], input: Data(signingInput.utf8)).stdout
            let token = signingInput + "." + base64URL(signature)
            let body = try JSONSerialization.data(withJSONObject: ["token": token, "access_token": token, "expires_in": 300])
            return HTTPResponse(status: 200, reason: "OK", contentType: "application/json", body: Array(body))
        } catch {
            return HTTPResponse(status: 500, reason: "Internal Server Error", body: Array("\(error)".utf8))
        }
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
