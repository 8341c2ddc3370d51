import Foundation
import WispCore

/// The system libvirt daemon the libvirt tests talk to. CI has no systemd: when
/// `qemu:///system` does not answer, the daemons are started as root does by hand
/// (`virtlogd -d` for the serial log, then `libvirtd -d`) and waited for.
public enum LibvirtDaemon {
    public static let uri = "qemu:///system"

    /// Two suites may ask at once; one starts the daemons, the other then finds them answering.
    private static let starting = NSLock()

    public static func ensureRunning() throws {
        if answers() { return }
        starting.lock()
        defer { starting.unlock() }
        if answers() { return }
        guard getuid() == 0 else {
            throw WispError(.unsupported, "libvirtd is not running and only root can start the system daemon (scripts/setup installs libvirt-daemon-system)")
        }
        for daemon in ["virtlogd", "libvirtd"] {
            guard let path = ToolRunner.locate(daemon) else {
                throw WispError.notFound("\(daemon) is not installed (scripts/setup installs libvirt-daemon-system)")
            }
            // -d forks into the background once it listens; a second one exits with an error
            // about its pid file, which is fine. Not ToolRunner (Foundation's Process): see
            // ForkingDaemon for why that never returns for these daemons.
            _ = try ForkingDaemon.start(path, ["-d"])
        }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if answers() { return }
            usleep(200_000)
        }
        throw WispError.timedOut("libvirtd did not answer on \(uri) within 30 s of starting it")
    }

    static func answers() -> Bool {
        (try? ToolRunner.run("virsh", ["-c", uri, "version"]))?.status == 0
    }
}
