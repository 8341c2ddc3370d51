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
}
