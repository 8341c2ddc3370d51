import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import Machine

/// Judge: QEMU itself. The `-blockdev` graph Wisp builds is opened by a real QEMU, and
/// QEMU's own account of what it opened (`query-named-block-nodes`) must be exactly the
/// files Wisp resolved, in the formats Wisp read, whatever the images' headers say.
@Suite struct BlockdevGraphTests {
    struct Node: Equatable { var name: String; var driver: String; var file: String; var readOnly: Bool }

    /// Starts a paused QEMU with no machine, only the disks, and asks it which nodes it has.
    func openedNodes(_ disk: DiskAttachment, in dir: TemporaryDirectory) throws -> [Node] {
        let qmpPath = dir.file("qmp.sock")
        let qemu = Process()
        qemu.executableURL = URL(fileURLWithPath: try HostQEMU.executable(for: X86_64Board()))
        qemu.arguments = ["-machine", "none", "-nodefaults", "-display", "none", "-S",
                          "-chardev", "socket,id=q,path=\(qmpPath),server=on,wait=off", "-mon", "chardev=q,mode=control"]
            + QEMUCommandLine.blockdevArguments(disk, id: "disk0")
        let errors = Pipe()
        qemu.standardError = errors
        try qemu.run()
        // SIGKILL: a paused QEMU need not shut down cleanly, and no signal mask can stop it.
        defer { kill(qemu.processIdentifier, SIGKILL); qemu.waitUntilExit() }
        var client: QMPClient?
        for _ in 0..<200 where client == nil {
            client = try? QMPClient(socketPath: qmpPath, timeout: 2)
            if client == nil {
                guard qemu.isRunning else {
                    throw WispError(.engineFailed, String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
                }
                usleep(20_000)
            }
        }
        let qmp = try #require(client)
        guard case .array(let nodes) = try qmp.execute("query-named-block-nodes", arguments: ["flat": true]) else { return [] }
        return nodes.compactMap { node in
            guard let name = node["node-name"]?.string, let driver = node["drv"]?.string, let file = node["file"]?.string else { return nil }
            return Node(name: name, driver: driver, file: file, readOnly: node["ro"]?.bool ?? false)
        }.sorted { $0.name < $1.name }
    }

    @Test func qemuOpensExactlyTheResolvedChainAndNothingTheHeadersName() throws {
        let dir = try TemporaryDirectory("wisp-blockdev")
        // A host file the top image's header points at: it must never be opened.
        let secret = dir.file("host-secret")
        FileManager.default.createFile(atPath: secret, contents: Data(repeating: 0x5A, count: 1 << 20))
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "raw", dir.file("base.raw"), "1M"])
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", "-b", dir.file("base.raw"), "-F", "raw", dir.file("mid.qcow2")])
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", dir.file("top.qcow2")])
        // What Wisp resolved (say, after refusing the header's name): top -> mid -> base.
        let disk = DiskAttachment(path: dir.file("top.qcow2"), format: .qcow2,
                                  backing: [DiskLayer(path: dir.file("mid.qcow2"), format: .qcow2),
                                            DiskLayer(path: dir.file("base.raw"), format: .raw)])
        let nodes = try openedNodes(disk, in: dir)
        #expect(nodes.map(\.name) == ["disk0", "disk0-backing1", "disk0-backing1-file", "disk0-backing2", "disk0-backing2-file", "disk0-file"])
        #expect(!nodes.contains { $0.file.contains("host-secret") }, "\(nodes)")
        let formats = nodes.filter { !$0.name.hasSuffix("-file") }
        #expect(formats.map(\.driver) == ["qcow2", "qcow2", "raw"])
        #expect(formats.map(\.readOnly) == [false, true, true])
        #expect(nodes.first { $0.name == "disk0-backing2-file" }?.file == dir.file("base.raw"))

        // A qcow2 given without a chain is opened alone: its header's backing name is ignored.
        let alone = try openedNodes(DiskAttachment(path: dir.file("top.qcow2"), format: .qcow2, readOnly: true), in: dir)
        #expect(alone.map(\.name) == ["disk0", "disk0-file"])
        #expect(alone.allSatisfy { $0.readOnly })
        // A raw file whose first bytes are a qcow2 header stays raw.
        let lookalike = dir.file("looks-like-qcow2.raw")
        try FileManager.default.copyItem(atPath: dir.file("top.qcow2"), toPath: lookalike)
        let raw = try openedNodes(DiskAttachment(path: lookalike, format: .raw, readOnly: true), in: dir)
        #expect(raw.first { $0.name == "disk0" }?.driver == "raw")
        #expect(!raw.contains { $0.file.contains("host-secret") })
    }

    @Test func externalDataFilesAreNodesOfTheirOwn() throws {
        let dir = try TemporaryDirectory("wisp-blockdev-data")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "data_file=\(dir.file("data.raw"))", dir.file("d.qcow2"), "1M"])
        let nodes = try openedNodes(DiskAttachment(path: dir.file("d.qcow2"), format: .qcow2, dataFile: dir.file("data.raw")), in: dir)
        #expect(nodes.first { $0.name == "disk0-data" }?.file == dir.file("data.raw"))
    }

    @Test func theSandboxIsSupportedHere() throws {
        // Debian's QEMU is built with seccomp; wisp run relies on it being detected.
        #expect(HostQEMU.supportsSandbox(try HostQEMU.executable(for: X86_64Board())))
        #expect(!HostQEMU.supportsSandbox("/bin/false"))
    }

    @Test func smbiosTableStringsAreNumberedAsStored() throws {
        let table = try SMBIOSSystemTable(manufacturer: "QEMU", productName: "", serialNumber: "ds=nocloud;s=http://10.0.2.2:1/t/",
                                          uuid: Array(0..<16)).encoded()
        #expect(table[0] == 1 && table[1] == 27)
        #expect(Array(table[4...7]) == [1, 0, 0, 2])          // product and version empty: string 0
        #expect(Array(table[8...15]) == [3, 2, 1, 0, 5, 4, 7, 6])  // little-endian UUID fields
        let strings = table[27...].split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        #expect(Array(strings.prefix(3)) == ["QEMU", "ds=nocloud;s=http://10.0.2.2:1/t/", ""])
        #expect(table.suffix(2) == [0, 0])
        #expect(throws: WispError.self) { try SMBIOSSystemTable(serialNumber: "a\u{0}b", uuid: Array(repeating: 1, count: 16)).encoded() }
        #expect(throws: WispError.self) { try SMBIOSSystemTable(serialNumber: "a", uuid: [1]).encoded() }
    }
}
