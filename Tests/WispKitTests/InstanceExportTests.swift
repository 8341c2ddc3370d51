#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import DiskImage
import Machine
import WispCore
import WispTestSupport
@testable import WispKit

/// `wisp image export --instance`: the instance's overlay with its base flattened into an
/// OVA, judged by tar, sha256sum and qemu-img; a running instance is refused.
@Suite struct InstanceExportTests {
    @Test func stoppedInstanceExportsItsFlattenedDiskAndRunningOneIsRefused() throws {
        let dir = try TemporaryDirectory("wisp-export")
        let store = InstanceStore(paths: WispPaths(environment: ["HOME": dir.path, "XDG_DATA_HOME": dir.file("data"), "XDG_CACHE_HOME": dir.file("cache")]))
        // A base with data, an overlay that changes part of it (written by qemu-io).
        let images = dir.file("images")
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        let base = "\(images)/base.qcow2"
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", base, "8M"])
        try ToolRunner.check("qemu-io", ["-f", "qcow2", "-c", "write -P 0x5a 0 1M", base])
        let name = try store.claim(requested: "exp", base: "x")
        let files = store.files(name)
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", files.overlay])
        try ToolRunner.check("qemu-io", ["-f", "qcow2", "-c", "write -P 0xa5 512k 1M", files.overlay])
        let spec = MachineSpec(cpus: 3, memoryBytes: 768 << 20, disks: [DiskAttachment(path: files.overlay, format: .qcow2)],
                               forwards: [PortForward(hostPort: 2222, guestPort: 22)], boot: .firmware(UEFIFirmware(code: "/x", vars: "/y")),
                               accelerator: .tcg)
        try store.save(InstanceRecord(name: name, image: base, baseImagePath: base, spec: spec, bootMode: .uefi, user: "u",
                                      hostname: name, sshPort: 2222, cloudInit: .disk, osName: nil))

        let ova = dir.file("exp.ova")
        try InstanceExporter(store: store).export(name, to: ova)
        let out = dir.file("x")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try ToolRunner.check("tar", ["-C", out, "-xf", ova])
        #expect(try ToolRunner.check("tar", ["-tf", ova]).stdoutText.split(separator: "\n") == ["exp.ovf", "exp-disk1.vmdk", "exp.mf"])
        let manifest = try String(contentsOfFile: "\(out)/exp.mf", encoding: .utf8)
        let sums = manifest.replacingOccurrences(of: #"SHA256\((.*)\)= (.*)"#, with: "$2  $1", options: .regularExpression)
        try ToolRunner.check("sha256sum", ["-c", "--quiet", "-"], input: Data(sums.utf8), currentDirectory: out)
        try ToolRunner.check("qemu-img", ["check", "-q", "\(out)/exp-disk1.vmdk"])
        try ToolRunner.check("qemu-img", ["compare", "-q", files.overlay, "\(out)/exp-disk1.vmdk"])
        let archive = try OvaArchive(path: ova)
        #expect(archive.descriptor.cpus == 3 && archive.descriptor.memoryBytes == 768 << 20)
        // Overrides win over the instance's values.
        try InstanceExporter(store: store).export(name, to: ova, overrides: .init(name: "appliance", cpus: 1, memoryBytes: 2 << 30))
        let overridden = try OvaArchive(path: ova)
        #expect(overridden.descriptor.cpus == 1 && overridden.descriptor.memoryBytes == 2 << 30)

        // A running QEMU (no guest: -machine none, paused) owns the instance: refused, nothing written.
        let qemu = Process()
        qemu.executableURL = URL(fileURLWithPath: try #require(ToolRunner.locate("qemu-system-x86_64")))
        qemu.arguments = ["-machine", "none", "-display", "none", "-S", "-nodefaults"]
        try qemu.run()
        // Killed and reaped by Wisp's own helper (Foundation's waitUntilExit can miss an exit).
        defer { QEMULauncher.terminate(pid: qemu.processIdentifier) }
        try Data("\(qemu.processIdentifier)\n".utf8).write(to: URL(fileURLWithPath: files.pidFile))
        for _ in 0..<50 where InstanceState.probe(files).state != .running { usleep(100_000) }
        let refused = dir.file("refused.ova")
        do {
            try InstanceExporter(store: store).export(name, to: refused)
            Issue.record("a running instance was exported")
        } catch let error as WispError {
            #expect(error.kind == .busy, "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: refused))
    }
}
