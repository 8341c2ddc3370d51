import Foundation
import WispCore
import WispTestSupport

/// A distribution download server on 127.0.0.1, laid out as the real ones are (dated build
/// directories, checksum files beside the images), with directory index pages as Apache
/// writes them, HTTP Range answers (206 + Content-Range), and faults on request: a path
/// whose first GET is cut half-way, a path that stalls.
final class DistributionMirror: @unchecked Sendable {
    let files = LockedValue<[String: [UInt8]]>([:])
    /// Paths whose next GET sends the head and half the body, then closes.
    let cutOnce = LockedValue<Set<String>>([])
    let stalls = LockedValue<Set<String>>([])
    /// Paths answered without Content-Length (the body ends when the connection does).
    let unsized = LockedValue<Set<String>>([])
    private(set) var server: ScriptedServer!

    var base: String { server.base }

    init() throws {
        server = try ScriptedServer { [unowned self] request in self.answer(request) }
    }

    func stop() { server.stop() }

    func put(_ path: String, _ bytes: [UInt8]) { files.withLock { $0[path] = bytes } }
    func put(_ path: String, _ text: String) { put(path, Array(text.utf8)) }

    /// Requests for `path` that asked for a range.
    func rangeRequests(_ path: String) -> [String] {
        server.requests.withLock { $0.filter { $0.path == path }.compactMap { $0.headers["range"] } }
    }

    func requestCount(_ path: String) -> Int {
        server.requests.withLock { $0.filter { $0.path == path }.count }
    }

    private func answer(_ request: ScriptedServer.Request) -> ScriptedServer.Action {
        let path = String(request.path.split(separator: "?", maxSplits: 1).first ?? "")
        if stalls.withLock({ $0.contains(path) }) { return .stall(seconds: 8) }
        if let body = files.withLock({ $0[path] }) {
            if let range = request.headers["range"], range.hasPrefix("bytes="), let start = Int(range.dropFirst(6).split(separator: "-").first ?? "") {
                guard start < body.count else { return .respond(status: 416, headers: [("Content-Range", "bytes */\(body.count)")], body: []) }
                return .respond(status: 206, headers: [("Content-Range", "bytes \(start)-\(body.count - 1)/\(body.count)"), ("Accept-Ranges", "bytes")],
                                body: Array(body[start...]))
            }
            if unsized.withLock({ $0.contains(path) }) { return .unsized(status: 200, headers: [], body: body) }
            if cutOnce.withLock({ $0.remove(path) != nil }) {
                return .cut(status: 200, headers: [("Accept-Ranges", "bytes")], body: body, after: body.count / 2)
            }
            return .respond(status: 200, headers: [("Accept-Ranges", "bytes")], body: body)
        }
        if path.hasSuffix("/") {
            // An Apache-style index of the direct children (files and directories).
            var children = Set<String>()
            for key in files.withLock({ Array($0.keys) }) where key.hasPrefix(path) {
                let rest = key.dropFirst(path.count)
                if let slash = rest.firstIndex(of: "/") { children.insert(String(rest[...slash])) } else { children.insert(String(rest)) }
            }
            guard !children.isEmpty else { return .respond(status: 404, headers: [], body: Array("Not Found".utf8)) }
            var html = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<html><head><title>Index of \(path)</title></head><body><h1>Index of \(path)</h1>\n"
            html += "<table><tr><th><a href=\"?C=N;O=D\">Name</a></th></tr><tr><td><a href=\"../\">Parent Directory</a></td></tr>\n"
            for child in children.sorted() {
                html += "<tr><td><a href=\"\(child)\">\(child)</a></td><td align=\"right\">2025-08-14 22:04  </td></tr>\n"
            }
            return .respond(status: 200, headers: [("Content-Type", "text/html;charset=UTF-8")], body: Array((html + "</table></body></html>\n").utf8))
        }
        return .respond(status: 404, headers: [], body: Array("Not Found".utf8))
    }
}

/// Digests and signing for fixtures, with the real tools.
enum FixtureDigest {
    static func hex(_ bytes: [UInt8], _ algorithm: String) throws -> String {
        let result = try ToolRunner.run(algorithm + "sum", [], input: Data(bytes))
        return String(result.stdoutText.prefix { $0 != " " })
    }
}

/// A throw-away OpenPGP key made by gpg, the distribution's signing key in the tests.
final class TestSigningKey {
    let home: TemporaryDirectory
    let keyring: String

    init() throws {
        home = try TemporaryDirectory("wisp-gpg")
        chmod(home.path, 0o700)
        let env = ["GNUPGHOME": home.path]
        let made = try ToolRunner.run("gpg", ["--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
                                              "Wisp Test Distribution <release@example.org>", "ed25519", "sign", "never"], environment: env)
        guard made.status == 0 else { throw WispError(.processFailed, "gpg --quick-gen-key: \(made.stderrText)") }
        keyring = home.file("distribution-keyring.gpg")
        let exported = try ToolRunner.run("gpg", ["--batch", "--output", keyring, "--export"], environment: env)
        guard exported.status == 0 else { throw WispError(.processFailed, "gpg --export: \(exported.stderrText)") }
    }

    /// `--clearsign` (Fedora's CHECKSUM) or `--detach-sign` (Ubuntu's SHA256SUMS.gpg).
    func sign(_ bytes: [UInt8], clear: Bool) throws -> [UInt8] {
        let input = home.file("in-\(UInt32.random(in: 0...UInt32.max))")
        try Data(bytes).write(to: URL(fileURLWithPath: input))
        let output = input + ".out"
        let result = try ToolRunner.run("gpg", ["--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--output", output,
                                                clear ? "--clearsign" : "--detach-sign", input], environment: ["GNUPGHOME": home.path])
        guard result.status == 0, let data = FileManager.default.contents(atPath: output) else {
            throw WispError(.processFailed, "gpg sign: \(result.stderrText)")
        }
        return Array(data)
    }

    deinit {
        _ = try? ToolRunner.run("gpgconf", ["--kill", "gpg-agent"], environment: ["GNUPGHOME": home.path])
    }
}
