import DiskImage
import Foundation
import Machine
import WispCore
import WispKit
#if canImport(Glibc)
import Glibc
#endif

/// An instance as `wisp list --json` and `wisp info --json` print it (docs/JSON.md): sizes in
/// bytes, ports and the SSH endpoint as objects.
struct InstanceView: Encodable {
    struct SSH: Encodable {
        var host: String
        var port: UInt16
        var user: String
        var command: String
    }

    struct Port: Encodable {
        var hostAddress: String
        var hostPort: UInt16
        var guestPort: UInt16
        var `protocol`: String

        init(_ forward: PortForward) {
            hostAddress = forward.hostAddress
            hostPort = forward.hostPort
            guestPort = forward.guestPort
            self.protocol = forward.transport.rawValue
        }
    }

    struct Mount: Encodable {
        var hostPath: String
        var guestPath: String
        var readOnly: Bool
    }

    struct Disk: Encodable {
        var path: String
        var format: String
        var readOnly: Bool
        /// The images under it, nearest first (the overlay's base image, ...).
        var backing: [String]
        /// Filled by `info` only (it reads each disk's header).
        var virtualSize: UInt64?
        var allocatedSize: UInt64?
        /// The ISO attached as the CD-ROM (`wisp run x.iso`); absent for disks.
        var cdrom: Bool?
    }

    var name: String
    var state: String
    var image: String?
    var digest: String?
    /// A catalog image's concrete build.
    var build: String?
    var ephemeral: Bool
    var os: String?
    var arch: String?
    var cpus: Int?
    var memory: UInt64?
    var accelerator: String?
    /// "qemu", or "libvirt:URI" for an instance run by a libvirt daemon.
    var engine: String?
    var boot: String?
    var ssh: SSH?
    var ports: [Port]
    var mounts: [Mount]
    var disks: [Disk]?
    var pid: Int32?
    var uptimeSeconds: Double?
    var created: Date?
    var directory: String

    /// `detailed` also reads the disks' headers and the process's start time.
    init(name: String, store: InstanceStore, detailed: Bool) {
        let files = store.files(name)
        let (state, pid) = InstanceState.probe(files)
        self.name = name
        self.state = state.rawValue
        self.directory = files.directory
        self.pid = pid
        self.ports = []
        self.mounts = []
        self.ephemeral = false
        // A directory without a readable instance.json: an interrupted run or a damaged
        // record (`wisp rm` still removes it).
        guard let record = try? store.load(name) else {
            self.state = InstanceState.incomplete.rawValue
            return
        }
        image = record.image
        build = record.baseImage?.build
        if case .container(_, let d)? = record.baseImage?.origin { digest = d }
        ephemeral = record.ephemeral
        os = record.osName
        arch = record.spec.architecture.rawValue
        cpus = record.spec.cpus
        memory = record.spec.memoryBytes
        accelerator = record.spec.accelerator.rawValue
        engine = LibvirtEngine.placement(files).map { "libvirt:\($0.uri)" } ?? "qemu"
        boot = record.bootMode.rawValue
        ssh = SSH(host: "127.0.0.1", port: record.sshPort, user: record.user, command: "wisp ssh \(name)")
        ports = record.spec.forwards.dropFirst().map(Port.init)
        mounts = record.spec.sharedFolders.map { Mount(hostPath: $0.hostPath, guestPath: $0.guestPath, readOnly: $0.readOnly) }
        created = record.createdAt
        guard detailed else { return }
        if let pid { uptimeSeconds = Self.uptime(pid: pid) }
        // A libvirt domain's disks are volumes of the daemon's pool, not the instance's files.
        let placement = LibvirtEngine.placement(files)
        disks = record.spec.disks.map { local in
            var attachment = local
            if let placement {
                attachment.path = LibvirtEngine.volumePath(placement, of: local.path, files: files)
                attachment.backing = []
            }
            var disk = Disk(path: attachment.path, format: attachment.format.rawValue, readOnly: attachment.readOnly,
                            backing: attachment.backing.map(\.path))
            // The chain Wisp checked when it made the instance, allowed again by directory.
            let directories = (attachment.backing.map(\.path) + [record.baseImagePath] + (placement == nil ? [] : [attachment.path])).map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
                + record.allowedBackingDirectories
            if let info = try? ImageInfo.read(path: attachment.path, policy: .confined(allowedDirectories: directories)) {
                disk.virtualSize = info.virtualSize
                disk.allocatedSize = info.diskSize
            }
            return disk
        }
        if let cdrom = record.spec.cdrom {
            let size = (try? FileManager.default.attributesOfItem(atPath: cdrom)[.size] as? UInt64) ?? nil
            disks?.append(Disk(path: cdrom, format: "raw", readOnly: true, backing: [], virtualSize: size, allocatedSize: nil, cdrom: true))
        }
    }

    /// Seconds since QEMU started, from /proc (field 22 of stat is the start time in clock
    /// ticks since boot).
    static func uptime(pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let uptime = try? String(contentsOfFile: "/proc/uptime", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name (which may hold spaces) start at field 3.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let ticks = Double(fields[19]), let now = Double(uptime.split(separator: " ").first ?? "") else { return nil }
        let hertz = Double(sysconf(Int32(_SC_CLK_TCK)))
        return max(0, (now - ticks / hertz).rounded())
    }
}
