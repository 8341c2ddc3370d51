import Foundation
import Testing
import CloudInit
import MetadataService
import WispTestSupport

/// The listener is judged by curl, the same HTTP client family cloud-init's url_helper
/// talks to (and an independent implementation of the protocol).
@Suite struct MetadataServerTests {
    let seed = NoCloudSeed(userData: Array("#cloud-config\nhostname: t\n".utf8), metaData: Array("instance-id: i-1\n".utf8),
                           networkConfig: Array("version: 2\n".utf8))

    @Test func servesNoCloudNetFiles() throws {
        let server = try MetadataServer(seed: seed)
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)/\(server.token)/"
        #expect(try ToolRunner.check("curl", ["-sf", base + "user-data"]).stdoutText == "#cloud-config\nhostname: t\n")
        #expect(try ToolRunner.check("curl", ["-sf", base + "meta-data"]).stdoutText == "instance-id: i-1\n")
        #expect(try ToolRunner.check("curl", ["-sf", base + "network-config"]).stdoutText == "version: 2\n")
        // vendor-data is absent from this seed, and unknown names are 404.
        #expect(try ToolRunner.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", base + "vendor-data"]).stdoutText == "404")
        #expect(try ToolRunner.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", base + "../../etc/passwd"]).stdoutText == "404")
        #expect(server.guestSeedURL == "http://10.0.2.2:\(server.port)/\(server.token)/")
    }

    /// Another local user can reach 127.0.0.1 too: without the token, nothing is served (the
    /// seed holds the guest's SSH host private key) and a phone_home is ignored.
    @Test func servesNothingWithoutTheToken() throws {
        let server = try MetadataServer(seed: seed)
        defer { server.stop() }
        #expect(server.token.count == 32 && server.token.allSatisfy(\.isHexDigit))
        #expect(try MetadataServer(seed: nil).token != server.token)
        let root = "http://127.0.0.1:\(server.port)"
        let wrong = String(repeating: "0", count: 32)
        for path in ["/user-data", "/meta-data", "/\(wrong)/user-data", "/\(server.token)user-data", "/\(server.token.prefix(31))/user-data"] {
            #expect(try ToolRunner.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", root + path]).stdoutText == "404", "\(path)")
        }
        for path in ["/phone-home", "/\(wrong)/phone-home", "/x/\(server.token)/phone-home"] {
            _ = try ToolRunner.run("curl", ["-s", "-X", "POST", "--data", "instance_id=fake", root + path])
        }
        #expect(server.phoneHomeData == nil, "a phone_home without the token counted")
        // The same token given back (an instance restarted) serves the same URLs.
        let port = server.port, token = server.token
        server.stop()
        let again = try MetadataServer(seed: seed, port: port, token: token)
        defer { again.stop() }
        #expect(try ToolRunner.check("curl", ["-sf", "\(root)/\(token)/meta-data"]).stdoutText == "instance-id: i-1\n")
    }

    @Test func recordsPhoneHome() throws {
        let server = try MetadataServer(seed: nil)
        defer { server.stop() }
        #expect(server.phoneHomeData == nil)
        // The form cloud-init's phone_home module posts.
        try ToolRunner.check("curl", ["-sf", "-X", "POST", "--data", "instance_id=wisp-t-1&hostname=t&pub_key_ed25519=ssh-ed25519+AAAA%2Fx",
                                      "http://127.0.0.1:\(server.port)/\(server.token)/\(MetadataServer.phoneHomeLeaf)"])
        let data = try #require(server.phoneHomeData)
        #expect(data["instance_id"] == "wisp-t-1")
        #expect(data["hostname"] == "t")
        #expect(data["pub_key_ed25519"] == "ssh-ed25519 AAAA/x")
    }

    @Test func survivesHostileRequests() throws {
        let server = try MetadataServer(seed: seed)
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)/\(server.token)/user-data"
        // Oversized header, absurd Content-Length, chunked body: each refused, server still serves.
        let huge = String(repeating: "a", count: 100_000)
        _ = try ToolRunner.run("curl", ["-s", "-H", "X-Big: \(huge)", url])
        #expect(try ToolRunner.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H", "Content-Length: 99999999999", url]).stdoutText == "400")
        #expect(try ToolRunner.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H", "Transfer-Encoding: chunked", "--data", "x", url]).stdoutText == "400")
        #expect(try ToolRunner.check("curl", ["-sf", url]).stdoutText.hasPrefix("#cloud-config"))
    }
}
