import Foundation
import Testing
import WispTestSupport
@testable import WispKit

/// The RSA and ECDSA host keys a cloud-init guest gets beside its ed25519 one (so
/// phone_home finds every key file it reads): real pairs, judged by ssh-keygen -y.
@Suite struct GuestHostKeyGenerationTests {
    @Test func makesMatchingPairs() throws {
        let dir = try TemporaryDirectory("wisp-host-keys")
        let generation = try GuestHostKeyGeneration(in: dir.path)
        generation.includeDSA = true
        let keys = try generation.keys()
        #expect(keys.map(\.type.rawValue) == ["rsa", "ecdsa", "dsa"], "this host's OpenSSH still makes DSA keys")
        for key in keys {
            let path = dir.file("ssh_host_\(key.type.rawValue)_key")
            #expect(key.privateKey.hasPrefix("-----BEGIN OPENSSH PRIVATE KEY-----"))
            let derived = try ToolRunner.check("ssh-keygen", ["-y", "-f", path]).stdoutText.split(separator: " ").prefix(2)
            #expect(key.publicKey.split(separator: " ").prefix(2) == derived, "\(key.type)")
            let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? 0
            #expect(mode & 0o077 == 0, "private key mode \(String(mode, radix: 8))")
        }
        #expect(keys.first?.publicKey.hasPrefix("ssh-rsa ") == true)
        #expect(keys[1].publicKey.hasPrefix("ecdsa-sha2-nistp256 "))
        #expect(keys.last?.publicKey.hasPrefix("ssh-dss ") == true)
    }
}
