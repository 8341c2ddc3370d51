import Foundation
import Machine
import Testing
import WispCore
import WispTestSupport

@Suite struct SharedFolderTests {
    let paths = QEMUCommandLine.RuntimePaths(qmpSocket: "/i/qmp.sock", consoleSocket: "/i/console.sock",
                                             serialLog: "/i/serial.log", pidFile: "/i/qemu.pid",
                                             smbiosTable: "/i/smbios-type1.bin", qemuLog: "/i/qemu.log",
                                             sharedFolderSocketDirectory: "/i")

    /// Guest RAM becomes a shared memfd (virtiofsd maps it) of exactly -m's size, and each
    /// folder a vhost-user-fs device on its virtiofsd's socket, tagged wispN.
    @Test func foldersBecomeVirtioFSDevicesOnSharedMemory() throws {
        for architecture in [GuestArchitecture.x86_64, .aarch64] {
            var spec = MachineSpec(architecture: architecture, cpus: 1, memoryBytes: 1536 << 20,
                                   forwards: [PortForward(hostPort: 2222, guestPort: 22)])
            spec.sharedFolders = [SharedFolder(hostPath: "/src, here", guestPath: "/src"),
                                  SharedFolder(hostPath: "/data", guestPath: "/data", readOnly: true)]
            let args = try QEMUCommandLine(spec: spec, paths: paths, name: "n").arguments
            let machine = try #require(args.firstIndex(of: "-machine").map { args[$0 + 1] })
            #expect(machine.hasSuffix(",memory-backend=wisp-mem"))
            #expect(args.contains("memory-backend-memfd,id=wisp-mem,size=1536M,share=on"))
            #expect(args.contains("1536M"))
            #expect(args.contains("socket,id=fs0,path=/i/virtiofs-0.sock"))
            #expect(args.contains("vhost-user-fs-pci,chardev=fs0,tag=wisp0"))
            #expect(args.contains("vhost-user-fs-pci,chardev=fs1,tag=wisp1"))
        }
        // Without folders, memory stays QEMU's private memory.
        let plain = try QEMUCommandLine(spec: MachineSpec(cpus: 1, memoryBytes: 512 << 20), paths: paths, name: "n").arguments
        #expect(!plain.contains { $0.contains("memory-backend") || $0.contains("vhost-user-fs") })
        var spec = MachineSpec(cpus: 1, memoryBytes: 512 << 20)
        spec.sharedFolders = [SharedFolder(hostPath: "/a", guestPath: "/a")]
        var noSockets = paths
        noSockets.sharedFolderSocketDirectory = nil
        #expect(throws: WispError.self) { try QEMUCommandLine(spec: spec, paths: noSockets, name: "n") }
    }

    @Test func parsesHostGuestAndReadOnly() throws {
        let dir = try TemporaryDirectory("wisp-mount")
        try FileManager.default.createDirectory(atPath: dir.file("a b"), withIntermediateDirectories: true)
        let real = URL(fileURLWithPath: dir.file("a b")).resolvingSymlinksInPath().path
        #expect(try SharedFolder.parse(dir.file("a b")) == SharedFolder(hostPath: real, guestPath: real))
        #expect(try SharedFolder.parse(dir.file("a b") + ":ro") == SharedFolder(hostPath: real, guestPath: real, readOnly: true))
        #expect(try SharedFolder.parse(dir.file("a b") + ":/mnt/x y/:rw") == SharedFolder(hostPath: real, guestPath: "/mnt/x y"))
        #expect(try SharedFolder.parse("a b:/src:ro", currentDirectory: dir.path) == SharedFolder(hostPath: real, guestPath: "/src", readOnly: true))
        #expect(throws: WispError.self) { try SharedFolder.parse(dir.file("absent")) }
        #expect(throws: WispError.self) { try SharedFolder.parse(":/x") }
        #expect(throws: WispError.self) { try SharedFolder.checkDistinct([SharedFolder(hostPath: "/a", guestPath: "/x"), SharedFolder(hostPath: "/b", guestPath: "/x")]) }
    }

    /// UDP forwards: parsed from `/udp`, spelled for QEMU, and old records (no transport)
    /// still load as TCP.
    @Test func udpForwardsAndOldRecords() throws {
        let udp = try PortForward.parse("0.0.0.0:5353:53/udp")
        #expect(udp == PortForward(hostAddress: "0.0.0.0", hostPort: 5353, guestPort: 53, transport: .udp))
        #expect(udp.hostfwd == "udp:0.0.0.0:5353-:53")
        #expect(udp.hostfwdKey == "udp:0.0.0.0:5353")
        #expect(udp.description == "0.0.0.0:5353->53/udp")
        #expect(try PortForward.parse("8080:80/TCP").transport == .tcp)
        #expect(throws: WispError.self) { try PortForward.parse("8080:80/sctp") }
        #expect(try PortForward.parseHostPort("5353/udp", option: "rm") == (5353, .udp))
        #expect(throws: WispError.self) { try PortForward.parseHostPort("0", option: "rm") }
        let old = try JSONDecoder().decode(PortForward.self, from: Data(#"{"hostAddress":"127.0.0.1","hostPort":8080,"guestPort":80}"#.utf8))
        #expect(old.transport == .tcp)
        let oldSpec = try JSONDecoder().decode(MachineSpec.self, from: Data(#"""
            {"cpus":1,"memoryBytes":536870912,"disks":[],"forwards":[{"hostAddress":"127.0.0.1","hostPort":2222,"guestPort":22}],
             "boot":{"firmware":{"_0":{"code":"c","vars":"v"}}},"accelerator":"tcg","macAddress":"52:54:00:12:34:56"}
            """#.utf8))
        #expect(oldSpec.sharedFolders.isEmpty)
        #expect(oldSpec.forwards.first?.transport == .tcp)
    }
}
