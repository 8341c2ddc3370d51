import Foundation
import WispCore
import WispTestSupport

/// A bootc-style Debian image made at test time from the test image's root filesystem
/// (extracted with `wisp fs get`): kernel and initramfs under /usr/lib/modules/$KVER/,
/// an empty /boot, an empty fstab (the root comes from the kernel command line, as in
/// bootc images), a kargs.d file, sshd enabled, networking by systemd-networkd with DHCP,
/// and cloud-init removed, so Wisp must provision it through systemd credentials (or,
/// with `cloudInit`, kept: the same image provisioned through the NoCloud seed). umoci
/// makes the layout and skopeo the oci-archive. Kept per test image in the temporary
/// directory (building takes about a minute).
struct BootcImageFixture {
    let directory: String
    var archive: String { "\(directory)/debian-bootc.tar" }
    /// The argument the image's kargs.d file adds to the kernel command line.
    static let kargsMarker = "wisp.e2e=kargs-d"

    static func get(wisp: String, cloudInit: Bool = false) throws -> BootcImageFixture {
        let image = try TestImage.path()
        let directory = FileManager.default.temporaryDirectory.path
            + "/wisp-e2e-bootc-fixture\(cloudInit ? "-cloud-init" : "")/\((image as NSString).lastPathComponent)"
        if FileManager.default.fileExists(atPath: "\(directory)/debian-bootc.tar") { return BootcImageFixture(directory: directory) }
        let building = directory + ".building-\(getpid())"
        try? FileManager.default.removeItem(atPath: building)
        try FileManager.default.createDirectory(atPath: building, withIntermediateDirectories: true)
        try ToolRunner.check("bash", ["-c", script, "fixture", building, image, wisp, kargsMarker, cloudInit ? "keep" : "remove"])
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.moveItem(atPath: building, toPath: directory)
        return BootcImageFixture(directory: directory)
    }

    static let script = #"""
    set -euo pipefail
    cd "$1"
    "$3" fs get "$2" / -o root
    kver=$(cd root/boot && ls vmlinuz-* | sed 's/^vmlinuz-//' | sort -V | tail -1)
    mkdir -p "root/usr/lib/modules/$kver" root/usr/lib/bootc/kargs.d
    mv "root/boot/vmlinuz-$kver" "root/usr/lib/modules/$kver/vmlinuz"
    mv "root/boot/initrd.img-$kver" "root/usr/lib/modules/$kver/initramfs.img"
    rm -rf root/boot/* root/vmlinuz* root/initrd.img*
    printf 'kargs = ["%s"]\n' "$4" > root/usr/lib/bootc/kargs.d/10-wisp-e2e.toml
    echo '# bootc: the root is named on the kernel command line' > root/etc/fstab
    if [ "$5" = keep ]; then
      umoci init --layout img >/dev/null && umoci new --image img:debian >/dev/null
      umoci insert --image img:debian root / >/dev/null && rm -rf root
      skopeo copy --quiet oci:img:debian oci-archive:debian-bootc.tar && rm -rf img
      exit 0
    fi
    # No cloud-init: its package files, configuration, units and generator.
    rm -rf root/etc/cloud root/var/lib/cloud root/usr/bin/cloud-init* root/usr/lib/python3/dist-packages/cloudinit \
      root/usr/lib/systemd/system/cloud-* root/usr/lib/systemd/system-generators/cloud-init-generator \
      root/etc/network/interfaces.d/*
    find root/etc/systemd/system -name 'cloud-*' -exec rm -rf {} +
    # The network as bootc images bring it: a DHCP .network file and systemd-networkd enabled.
    mkdir -p root/etc/systemd/network root/etc/systemd/system/multi-user.target.wants \
      root/etc/systemd/system/sockets.target.wants root/etc/systemd/system/network-online.target.wants
    printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' > root/etc/systemd/network/80-dhcp.network
    ln -sf /usr/lib/systemd/system/systemd-networkd.service root/etc/systemd/system/multi-user.target.wants/
    ln -sf /usr/lib/systemd/system/systemd-networkd.socket root/etc/systemd/system/sockets.target.wants/
    ln -sf /usr/lib/systemd/system/systemd-networkd-wait-online.service root/etc/systemd/system/network-online.target.wants/
    test -e root/usr/sbin/sshd
    test -L root/etc/systemd/system/multi-user.target.wants/ssh.service
    umoci init --layout img >/dev/null
    umoci new --image img:debian >/dev/null
    umoci insert --image img:debian root / >/dev/null
    rm -rf root
    skopeo copy --quiet oci:img:debian oci-archive:debian-bootc.tar
    rm -rf img
    """#
}

/// Debian's docker-registry on 127.0.0.1 with a free port, plain HTTP, no auth, its storage
/// in a temporary directory.
final class LocalRegistry: @unchecked Sendable {
    let directory: TemporaryDirectory
    let port: UInt16
    let process: Process
    var host: String { "127.0.0.1:\(port)" }

    init() throws {
        directory = try TemporaryDirectory("wisp-e2e-registry")
        port = try Self.freePort()
        let config = """
        version: 0.1
        log:
          level: error
        storage:
          filesystem:
            rootdirectory: \(directory.file("storage"))
        http:
          addr: 127.0.0.1:\(port)
        """
        try config.write(toFile: directory.file("config.yml"), atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: ToolRunner.locate("docker-registry") ?? "/usr/bin/docker-registry")
        process.arguments = ["serve", directory.file("config.yml")]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if (try? ToolRunner.run("curl", ["-fsS", "-o", "/dev/null", "http://\(host)/v2/"]))?.status == 0 { return }
            guard process.isRunning else { throw WispError(.processFailed, "docker-registry exited \(process.terminationStatus) at start") }
            usleep(100_000)
        }
        throw WispError(.timedOut, "docker-registry did not answer on \(host) within 20 s")
    }

    deinit {
        process.terminate()
        process.waitUntilExit()
    }

    /// Pushes `source` (a skopeo reference) as `repository:tag`.
    func push(_ source: String, as repository: String) throws {
        try ToolRunner.check("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", source, "docker://\(host)/\(repository)"])
    }

    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WispError.posix("socket", "127.0.0.1", errno: errno) }
        defer { close(fd) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0 else { throw WispError.posix("bind", "127.0.0.1:0", errno: errno) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return UInt16(bigEndian: sin.sin_port)
    }
}
