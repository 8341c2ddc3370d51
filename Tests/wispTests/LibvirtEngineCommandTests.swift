import Foundation
import Testing
import WispCore
import WispTestSupport

/// `wisp run --engine libvirt` refusing before any work: an unreachable daemon, an option
/// only Wisp's own QEMU has, an engine it does not know. Nothing is left behind.
@Suite struct LibvirtEngineCommandTests {
    @Test func refusalsComeFirstAndLeaveNothing() throws {
        let dir = try TemporaryDirectory("wisp-libvirt-cli")
        let environment = EverydayCommandTests.environment(dir)
        let image = try TestImage.path()
        let unreachable = try WispBinary.run(["run", "--engine", "libvirt:qemu+unix:///system?socket=\(dir.file("no-daemon.sock"))", image],
                                             environment: environment)
        #expect(unreachable.status == 1)
        #expect(unreachable.stderrText.hasPrefix("wisp: cannot connect to libvirt at qemu+unix:///system"), "\(unreachable.stderrText)")
        #expect(!unreachable.stderrText.contains("creating the overlay"), "the daemon is asked before any work")

        let mount = try WispBinary.run(["run", "--engine", "libvirt", "--mount", dir.path, image], environment: environment)
        #expect(mount.status == 64 && mount.stderrText.contains("--engine libvirt does not support --mount"))
        let unknown = try WispBinary.run(["run", "--engine", "xen", image], environment: environment)
        #expect(unknown.status == 64 && unknown.stderrText.contains("expected qemu, libvirt or libvirt:URI"))
        #expect(EverydayCommandTests.instances(dir).isEmpty)
    }

    /// `wisp export libvirt IMAGE`: a stopped instance made as wisp run makes it (no boot, no
    /// daemon needed), its domain XML judged by libvirt's schema, every file it names present
    /// and inside the instance directory, and the image untouched.
    @Test func exportFromAnImageMakesAStoppedInstance() throws {
        let dir = try TemporaryDirectory("wisp-libvirt-export")
        let environment = EverydayCommandTests.environment(dir)
        let key = dir.file("key")
        _ = try ToolRunner.run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key])
        let image = try TestImage.path()
        let before = try ToolRunner.run("sha256sum", [image]).stdoutText
        let exported = try WispBinary.run(["export", "libvirt", image, "--name", "deb", "--cpus", "1", "--memory", "1G",
                                           "--ssh-key", key + ".pub"], environment: environment)
        #expect(exported.status == 0, "\(exported.stderrText)")
        #expect(exported.stderrText.contains("made instance deb (stopped)"), "\(exported.stderrText)")
        try exported.stdout.write(to: URL(fileURLWithPath: dir.file("deb.xml")))
        let validated = try ToolRunner.run("virt-xml-validate", [dir.file("deb.xml"), "domain"])
        #expect(validated.status == 0, "\(validated.stderrText)")
        let xml = exported.stdoutText
        #expect(xml.contains("<memory unit='MiB'>1024</memory>") && xml.contains("<vcpu>1</vcpu>"), "\(xml)")
        // Every file the domain opens exists and is the instance's, but for the image as the
        // overlay's read-only backing layer.
        let instanceDirectory = dir.file("data") + "/wisp/instances/deb"
        var named: [String] = []
        for (open, close) in [("<kernel>", "</kernel>"), ("<initrd>", "</initrd>"), ("<source file='", "'")] {
            for piece in xml.components(separatedBy: open).dropFirst() {
                if let end = piece.range(of: close) { named.append(String(piece[..<end.lowerBound])) }
            }
        }
        #expect(Set(named) == [instanceDirectory + "/vmlinuz", instanceDirectory + "/initrd.img", instanceDirectory + "/overlay.qcow2",
                               instanceDirectory + "/seed.iso", image], "\(named)")
        for path in named { #expect(FileManager.default.fileExists(atPath: path), "\(path)") }
        #expect(xml.contains("<source file='\(instanceDirectory)/overlay.qcow2'/>\n      <backingStore type='file'>"), "\(xml)")
        #expect(EverydayCommandTests.instances(dir) == ["deb"])
        let list = try WispBinary.run(["list", "--json"], environment: environment)
        #expect(list.stdoutText.contains("\"stopped\""), "\(list.stdoutText)")
        // An existing instance's name prints its domain again; image options are refused for it.
        let again = try WispBinary.run(["export", "libvirt", "deb"], environment: environment)
        #expect(again.status == 0 && again.stdoutText.contains("<domain"), "\(again.stderrText)")
        let refused = try WispBinary.run(["export", "libvirt", "deb", "--cpus", "2"], environment: environment)
        #expect(refused.status == 64, "\(refused.stderrText)")
        #expect(try ToolRunner.run("sha256sum", [image]).stdoutText == before)
        #expect(try WispBinary.run(["rm", "deb"], environment: environment).status == 0)
    }
}
