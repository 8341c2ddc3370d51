#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Machine
import Testing
import WispCore
import WispKit
import WispTestSupport

/// `wisp port`, `wisp cp`, `wisp run --mount` and `wisp fs` on an instance, run as the real
/// binary without booting: the mistakes (sentence, exit status, nothing left behind) and a
/// stopped instance's record changes. The running-guest side is FilesAndPortsBootTests.
@Suite struct PortCopyMountCommandTests {
    /// A scratch XDG tree holding one stopped instance "st": a qcow2 overlay (made by
    /// qemu-img) on the FAT fixture disk, and a record forwarding SSH from `sshPort`.
    struct Sandbox {
        let dir: TemporaryDirectory
        let store: InstanceStore
        let sshPort: UInt16 = 2222

        init(withInstance: Bool = true) throws {
            dir = try TemporaryDirectory("wisp-ports")
            store = InstanceStore(paths: WispPaths(environment: ["HOME": dir.path, "XDG_DATA_HOME": dir.file("data"), "XDG_CACHE_HOME": dir.file("cache")]))
            guard withInstance else { return }
            let fixture = try FSCommandTests.makeFixture()
            let base = dir.file("base.img")
            try FileManager.default.copyItem(atPath: fixture.disk, toPath: base)
            _ = try store.claim(requested: "st", base: "st")
            let files = store.files("st")
            try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", files.overlay])
            let spec = MachineSpec(cpus: 1, memoryBytes: 512 << 20, disks: [DiskAttachment(path: files.overlay, format: .qcow2)],
                                   forwards: [PortForward(hostPort: sshPort, guestPort: 22)])
            try store.save(InstanceRecord(name: "st", image: base, baseImagePath: base, spec: spec, bootMode: .uefi, user: "me",
                                          hostname: "st", sshPort: sshPort, cloudInit: .disk, osName: nil))
        }

        var environment: [String: String] { ["HOME": dir.path, "XDG_DATA_HOME": dir.file("data"), "XDG_CACHE_HOME": dir.file("cache")] }

        func run(_ arguments: [String]) throws -> ToolResult { try WispBinary.run(arguments, environment: environment) }
        func check(_ arguments: [String]) throws -> ToolResult { try WispBinary.check(arguments, environment: environment) }
        func instances() -> [String] { store.names() }
    }

    @Test func portAddAndRemoveChangeAStoppedInstancesRecord() throws {
        let box = try Sandbox()
        let added = try box.check(["port", "add", "st", "18080:80"])
        #expect(added.stderrText.contains("st: 127.0.0.1:18080->80/tcp (recorded; in effect from wisp start st)"))
        try box.check(["port", "add", "st", "0.0.0.0:15353:53/udp"])
        #expect(try box.store.load("st").spec.forwards == [
            PortForward(hostPort: box.sshPort, guestPort: 22),
            PortForward(hostPort: 18080, guestPort: 80),
            PortForward(hostAddress: "0.0.0.0", hostPort: 15353, guestPort: 53, transport: .udp),
        ])
        // The listing, as a table and as JSON objects (the SSH forward first).
        let table = try box.check(["port", "st"]).stdoutText
        #expect(table.contains("127.0.0.1:2222") && table.contains("(ssh)") && table.contains("0.0.0.0:15353"))
        let json = try JSONSerialization.jsonObject(with: box.check(["port", "ls", "st", "--json"]).stdout) as? [[String: Any]]
        #expect(json?.map { $0["protocol"] as? String } == ["tcp", "tcp", "udp"])

        // UDP and TCP on one port number are different forwards.
        try box.check(["port", "rm", "st", "15353/udp"])
        let missing = try box.run(["port", "rm", "st", "15353"])
        #expect(missing.status == 1)
        #expect(missing.stderrText.contains("st forwards no host port 15353/tcp (its forwards: 18080/tcp)"))
        let ssh = try box.run(["port", "rm", "st", String(box.sshPort)])
        #expect(ssh.status == 64)
        #expect(ssh.stderrText.contains("is st's SSH forward"))
        let twice = try box.run(["port", "add", "st", "18080:8080"])
        #expect(twice.status == 1)
        #expect(twice.stderrText.contains("st already forwards host port 18080/tcp"))
        try box.check(["port", "rm", "st", "18080"])
        #expect(try box.store.load("st").spec.forwards == [PortForward(hostPort: box.sshPort, guestPort: 22)])
    }

    @Test func portAddRefusesAPortThatCannotBeBound() throws {
        let box = try Sandbox()
        // Hold a port the way another program would.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(listen(fd, 1) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let held = UInt16(bigEndian: sin.sin_port)
        let result = try box.run(["port", "add", "st", "\(held):80"])
        #expect(result.status == 1)
        #expect(result.stderrText.contains("host port 127.0.0.1:\(held)/tcp cannot be bound"))
        #expect(try box.store.load("st").spec.forwards.count == 1)
    }

    @Test func portMistakesAreSentencesWithUsageStatus() throws {
        let box = try Sandbox(withInstance: false)
        for (arguments, status, sentence) in [
            (["port", "add", "ghost", "8080:80"], Int32(1), "no instance named ghost"),
            (["port", "add", "ghost", "8080:80/sctp"], 64, "'/sctp' is not a transport (use /tcp or /udp)"),
            (["port", "add", "ghost", "8080"], 64, "expected [HOST_IP:]HOST_PORT:GUEST_PORT[/udp]"),
            (["port", "rm", "ghost", "http"], 64, "expected HOST_PORT[/udp]"),
            (["port", "ghost"], 1, "no instance named ghost"),
        ] {
            let result = try box.run(arguments)
            #expect(result.status == status, "\(arguments)")
            #expect(result.stderrText.contains(sentence), "\(arguments): \(result.stderrText)")
        }
    }

    @Test func copyMistakes() throws {
        let box = try Sandbox()
        for (arguments, status, sentence) in [
            (["cp", "a", "b"], Int32(64), "one of SRC and DST must be in an instance"),
            (["cp", "st:/a", "st:/b"], 64, "copying between two instances is not supported"),
            (["cp", "ghost:/etc/hosts", "."], 1, "no instance named ghost"),
            (["cp", "st:/etc/hosts", "."], 1, "instance st is stopped, not running"),
        ] {
            let result = try box.run(arguments)
            #expect(result.status == status, "\(arguments)")
            #expect(result.stderrText.contains(sentence), "\(arguments): \(result.stderrText)")
        }
        #expect(InstanceCopy.Location.parse("web:/etc/hosts") == .instance(name: "web", path: "/etc/hosts"))
        #expect(InstanceCopy.Location.parse("web:") == .instance(name: "web", path: "."))
        #expect(InstanceCopy.Location.parse("./a:b") == .host("./a:b"))
        #expect(InstanceCopy.Location.parse("/x/web:b") == .host("/x/web:b"))
    }

    @Test func fsReadsAStoppedInstancesDisk() throws {
        let box = try Sandbox()
        let out = box.dir.file("hello.txt")
        try box.check(["fs", "get", "st", "/dir/hello.txt", "-o", out])
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "hello\n")
        #expect(try box.check(["fs", "cat", "st", "/dir/hello.txt"]).stdoutText == "hello\n")
    }

    @Test func runMountMistakesLeaveNothingBehind() throws {
        let box = try Sandbox(withInstance: false)
        let image = box.dir.file("unused.qcow2")
        for (mount, status, sentence) in [
            (box.dir.file("absent"), Int32(1), "is not a directory on this host"),
            ("\(box.dir.path):relative", 64, "the guest directory relative must be an absolute path"),
            ("\(box.dir.path):/", 64, "the guest's root directory cannot be replaced"),
            ("\(box.dir.path):/a/../b", 64, "must be a plain absolute path"),
            ("\(box.dir.path):/a:/b", 64, "expected HOST_DIR[:GUEST_DIR][:ro]"),
        ] {
            let result = try box.run(["run", "--mount", mount, image])
            #expect(result.status == status, "\(mount)")
            #expect(result.stderrText.contains(sentence), "\(mount): \(result.stderrText)")
        }
        let twice = try box.run(["run", "--mount", "\(box.dir.path):/x", "--mount", "\(box.dir.path):/x:ro", image])
        #expect(twice.status == 64 && twice.stderrText.contains("two folders would be mounted on /x"))
        #expect(box.instances().isEmpty)
    }
}
