import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import WispKit

/// The SSH login through which Wisp reaches a guest of a remote libvirt host, read from the
/// libvirt URI; judged by OpenSSH itself (`ssh -G` parses the ProxyCommand option) and by
/// the shell that runs it (the words come back as written).
@Suite struct LibvirtSSHJumpTests {
    @Test func readFromTheURI() throws {
        #expect(try LibvirtSSHJump.forURI("qemu:///system") == nil)
        let plain = try #require(try LibvirtSSHJump.forURI("qemu+ssh://admin@vmhost.example/system"))
        #expect(plain == LibvirtSSHJump(user: "admin", host: "vmhost.example", port: nil, keyFile: nil, verifyHostKey: true))
        #expect(plain.jumpCommand(ssh: "/usr/bin/ssh") == ["/usr/bin/ssh", "-W", "[%h]:%p", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-l", "admin", "vmhost.example"])
        let full = try #require(try LibvirtSSHJump.forURI("qemu+ssh://root@127.0.0.1:2222/system?keyfile=/tmp/k%20ey&no_verify=1"))
        #expect(full == LibvirtSSHJump(user: "root", host: "127.0.0.1", port: 2222, keyFile: "/tmp/k ey", verifyHostKey: false))
        #expect(full.destination == "root@127.0.0.1:2222")
        #expect(full.jumpCommand(ssh: "ssh") == ["ssh", "-W", "[%h]:%p", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                                                 "-p", "2222", "-l", "root", "-i", "/tmp/k ey", "-o", "StrictHostKeyChecking=no", "127.0.0.1"])
        let v6 = try #require(try LibvirtSSHJump.forURI("qemu+ssh://[fd00::2]:22/system?no_verify=0"))
        #expect(v6.host == "fd00::2" && v6.verifyHostKey && v6.destination == "[fd00::2]:22")
    }

    @Test func refusedURIs() {
        for uri in ["qemu+tcp://10.0.0.2/system", "qemu+tls://host/system", "qemu+ssh://-oProxyCommand=x/system", "qemu+ssh://-l@host/system"] {
            #expect(throws: WispError.self, "\(uri)") { try LibvirtSSHJump.forURI(uri) }
        }
    }

    /// A keyfile path with a quote, a space and a '%' survives ssh's token expansion and the shell.
    @Test func proxyCommandSurvivesSSHAndTheShell() throws {
        let jump = try #require(try LibvirtSSHJump.forURI("qemu+ssh://ops@vm-host:2200/system?keyfile=/tmp/it's%2520my%20key"))
        #expect(jump.keyFile == "/tmp/it's%20my key")
        let option = jump.proxyCommandOption(ssh: "/usr/bin/ssh")
        let parsed = try ToolRunner.check("ssh", ["-G", "-o", option, "-p", "40022", "127.0.0.1"]).stdoutText
        let line = try #require(parsed.split(separator: "\n").first { $0.hasPrefix("proxycommand ") })
        #expect(String(line) == "proxycommand " + option.dropFirst("ProxyCommand=".count))
        // What ssh runs: its tokens expanded ('%%' -> '%', %h, %p), then `sh -c "exec ..."`;
        // printf stands in for ssh to show the words the shell passes on.
        let expanded = String(option.dropFirst("ProxyCommand=".count))
            .replacingOccurrences(of: "%h", with: "127.0.0.1").replacingOccurrences(of: "%p", with: "40022")
            .replacingOccurrences(of: "%%", with: "%").replacingOccurrences(of: "/usr/bin/ssh", with: "printf '<%s>'", options: .anchored)
        let words = try ToolRunner.check("sh", ["-c", "exec " + expanded]).stdoutText
        #expect(words == "<-W><[127.0.0.1]:40022><-o><BatchMode=yes><-o><LogLevel=ERROR><-p><2200><-l><ops><-i></tmp/it's%20my key><vm-host>")
    }
}

