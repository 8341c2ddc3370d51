import DiskImage
import Foundation
import Machine
import WispCore

/// Where a libvirt-run instance lives: the daemon's URI, the domain, and the volumes of
/// Wisp's storage pool that hold its disks, seed and kernel. Kept in the instance directory
/// as `libvirt.json`; its presence is what makes an instance a libvirt one.
public struct LibvirtPlacement: Sendable, Codable, Equatable {
    public var uri: String
    public var domain: String
    public var pool: String
    public var volumes: [String]
}

/// `wisp run --engine libvirt`: the instance Wisp created (overlay, seed, extracted kernel,
/// keys) handed to a libvirt daemon. Every file the domain opens is a volume of a directory
/// pool named `wisp`, uploaded through libvirt: the same code path for a remote host
/// (`qemu+ssh://`) and the local one, where QEMU runs as `libvirt-qemu` and could not
/// traverse the owner-only instance directory under the user's home.
public enum LibvirtEngine {
    public static let poolName = "wisp"

    /// The default daemon: the system one for root, the user's session otherwise.
    public static var defaultURI: String { getuid() == 0 ? "qemu:///system" : "qemu:///session" }

    /// `libvirt` or `libvirt:URI` (any libvirt URI).
    public static func parseEngine(_ text: String) throws -> String? {
        if text == "qemu" { return nil }
        if text == "libvirt" { return defaultURI }
        if text.hasPrefix("libvirt:"), text.count > "libvirt:".count { return String(text.dropFirst("libvirt:".count)) }
        throw WispError.usage("--engine \(text): expected qemu, libvirt or libvirt:URI (for example libvirt:qemu+ssh://host/system)")
    }

    /// A URI naming no host is this machine's daemon (its files are readable here).
    public static func isLocal(_ uri: String) -> Bool {
        guard let range = uri.range(of: "://") else { return true }
        return uri[range.upperBound...].hasPrefix("/")
    }

    /// The pool's directory on the daemon's host.
    static func poolPath(uri: String) -> String {
        if uri.hasSuffix("/session") {
            let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
            return "\(home)/.local/share/libvirt/images/\(poolName)"
        }
        return "/var/lib/libvirt/images/\(poolName)"
    }

    /// `wisp-NAME-XXXXXXXX`: the suffix comes from the instance directory, so two Wisp
    /// stores (two users, a test run) sharing one daemon never claim the same domain.
    static func domainName(_ name: String, files: InstanceFiles) -> String {
        var hasher = SHA256()
        hasher.update(Array(files.directory.utf8))
        let digest = hasher.finalize()
        return "wisp-\(name)-" + digest.prefix(4).map { String(format: "%02x", $0) }.joined()
    }

    /// Where the daemon keeps the volume made from the instance file `path` (overlay, seed)
    /// on its own host.
    public static func volumePath(_ placement: LibvirtPlacement, of path: String, files: InstanceFiles) -> String {
        let role = path == files.overlay ? "overlay" : (path as NSString).lastPathComponent
        return "\(poolPath(uri: placement.uri))/\(placement.domain)-\(role)"
    }

    public static func placementFile(_ files: InstanceFiles) -> String { "\(files.directory)/libvirt.json" }

    public static func placement(_ files: InstanceFiles) -> LibvirtPlacement? {
        guard let data = FileManager.default.contents(atPath: placementFile(files)) else { return nil }
        return try? JSONDecoder().decode(LibvirtPlacement.self, from: data)
    }

    /// The refusal of a verb that works on the instance's local disk or QEMU, for an instance
    /// libvirt runs: its disk is a volume of the daemon's pool (the local overlay is an empty
    /// placeholder) and its QEMU is the daemon's.
    public static func ownsDisk(_ name: String, verb: String) -> WispError {
        WispError(.unsupported, "\(verb) does not work on \(name): it runs under libvirt, whose pool holds its disk (use virsh, e.g. virsh snapshot-create-as, virsh managedsave, or virsh vol-download)")
    }

    /// What `wisp run` may not ask of the libvirt engine (things only Wisp's own QEMU does).
    public static func checkSupported(_ options: RunOptions) throws {
        var refused: [String] = []
        if !options.mounts.isEmpty { refused.append("--mount") }
        if !options.extraDisks.isEmpty { refused.append("--disk") }
        if options.ephemeral { refused.append("--ephemeral") }
        if options.provisioning == .systemd { refused.append("--provision systemd") }
        if options.cloudInit == .http { refused.append("--cloud-init http") }
        if !refused.isEmpty {
            throw WispError.usage("--engine libvirt does not support \(refused.joined(separator: ", ")) (use --engine qemu)")
        }
    }

    /// Uploads the instance's files into the pool, defines the domain and records where it
    /// lives. On failure, whatever was made in libvirt is removed again.
    public static func deploy(_ record: InstanceRecord, files: InstanceFiles, uri: String, accelerator: AcceleratorChoice,
                              progress: @escaping @Sendable (String) -> Void) throws -> InstanceRecord {
        let connection = try LibvirtConnection(uri: uri)
        let board = try Boards.for(record.spec.architecture)
        var booted = record
        booted.spec.accelerator = try chooseAccelerator(accelerator, connection: connection, uri: uri, record: record)
        let spec = try InstanceDiskChains.resolve(booted, files: files)
        guard record.provisioning == .cloudInit, spec.credentials.isEmpty, spec.sharedFolders.isEmpty else {
            throw WispError(.unsupported, "--engine libvirt boots cloud-init guests only (this one is provisioned by systemd credentials)")
        }
        guard spec.cdrom == nil else {
            // The domain definition has no CD-ROM yet; booting the blank disk alone would be wrong.
            throw WispError(.unsupported, "--engine libvirt does not boot ISO images yet (use --engine qemu)")
        }
        let domain = domainName(record.name, files: files)
        var placement = LibvirtPlacement(uri: uri, domain: domain, pool: poolName, volumes: [])
        do {
            try connection.ensureDirectoryPool(name: poolName, path: poolPath(uri: uri))
            func upload(_ path: String, _ role: String) throws -> String {
                let volume = "\(domain)-\(role)"
                progress("\(record.name): uploading \(role) to libvirt pool \(poolName) (\(uri))")
                placement.volumes.append(volume)
                return try connection.upload(file: path, pool: poolName, volume: volume)
            }
            var disks: [LibvirtDomainXML.Disk] = []
            for disk in spec.disks {
                if disk.path == files.overlay {
                    // The base chain, layer by layer, then a fresh overlay made by libvirt
                    // on the uploaded base (the local overlay is empty: nothing is lost).
                    var layers: [DiskLayer] = []
                    for (depth, layer) in disk.backing.enumerated() {
                        guard layer.dataFile == nil else {
                            throw WispError(.unsupported, "\(layer.path): a qcow2 with an external data file cannot be uploaded to libvirt")
                        }
                        layers.append(DiskLayer(path: try upload(layer.path, "base\(depth)"), format: layer.format))
                    }
                    let baseDirectory = (record.baseImagePath as NSString).deletingLastPathComponent
                    let size = try BackingChain.resolve(path: files.overlay, format: .qcow2,
                                                        policy: .confined(allowedDirectories: record.allowedBackingDirectories + [baseDirectory])).top.virtualSize
                    let volume = "\(domain)-overlay"
                    placement.volumes.append(volume)
                    var xml = "<volume><name>\(LibvirtDomainXML.escape(volume))</name><capacity unit='bytes'>\(size)</capacity>"
                        + "<target><format type='qcow2'/><permissions><mode>0600</mode></permissions></target>"
                    if let first = layers.first {
                        xml += "<backingStore><path>\(LibvirtDomainXML.escape(first.path))</path><format type='\(first.format.rawValue)'/></backingStore>"
                    }
                    xml += "</volume>"
                    let path = try connection.createVolume(pool: poolName, xml: xml)
                    disks.append(.init(path: path, format: .qcow2, backing: layers))
                } else if disk.path == files.seed {
                    disks.append(.init(path: try upload(files.seed, "seed.iso"), format: .raw, readOnly: true))
                } else {
                    throw WispError(.unsupported, "\(disk.path): --engine libvirt boots the image's own disk and the seed only")
                }
            }
            let boot: LibvirtDomainXML.Boot
            switch spec.boot {
            case .direct(let direct):
                let kernel = try upload(direct.kernel, "vmlinuz")
                let initrd = try direct.initrd.map { try upload($0, "initrd.img") }
                boot = .direct(kernel: kernel, initrd: initrd, commandLine: direct.commandLine)
            case .firmware:
                // The firmware of the daemon's host (the same Debian package paths).
                let firmware = try HostQEMU.firmware(for: board)
                boot = .firmware(loader: firmware.code, varsTemplate: firmware.varsTemplate)
            case .bios:
                throw WispError(.unsupported, "--engine libvirt does not boot ISO images yet (use --engine qemu)")
            }
            let definition = LibvirtDomainXML(name: domain, spec: spec, disks: disks, boot: boot,
                                              serialLog: isLocal(uri) ? files.serialLog : nil)
            try savePlacement(placement, files)
            try connection.define(xml: try definition.xml())
            // Kept for `wisp export libvirt` and for people reading the instance directory.
            try? AtomicOutput.write(Array(try definition.xml().utf8), to: "\(files.directory)/libvirt-domain.xml", permissions: 0o600)
        } catch {
            removeAll(placement, connection: connection)
            try? FileManager.default.removeItem(atPath: placementFile(files))
            throw error
        }
        return booted
    }

    /// The domain XML of an instance, for `wisp export libvirt`: a libvirt-run instance's
    /// definition as Wisp gave it to the daemon; for one Wisp runs itself, the same machine
    /// over the instance's own files (overlay and its checked backing chain, seed, extracted
    /// kernel), ready for `virsh define` on this host. The domain type follows the
    /// instance's accelerator.
    public static func domainXML(_ record: InstanceRecord, files: InstanceFiles) throws -> String {
        if placement(files) != nil, let saved = FileManager.default.contents(atPath: "\(files.directory)/libvirt-domain.xml") {
            return String(decoding: saved, as: UTF8.self)
        }
        guard record.provisioning == .cloudInit, record.spec.sharedFolders.isEmpty else {
            throw WispError(.unsupported, "\(record.name) uses systemd credentials or shared folders, which a libvirt domain made by Wisp does not carry")
        }
        guard record.spec.cdrom == nil else {
            throw WispError(.unsupported, "\(record.name) boots an ISO image, which a libvirt domain made by Wisp does not carry yet")
        }
        let spec = try InstanceDiskChains.resolve(record, files: files)
        let disks = spec.disks.map { LibvirtDomainXML.Disk(path: $0.path, format: $0.format, readOnly: $0.readOnly, backing: $0.backing) }
        let boot: LibvirtDomainXML.Boot
        switch spec.boot {
        case .direct(let direct):
            boot = .direct(kernel: direct.kernel, initrd: direct.initrd, commandLine: direct.commandLine)
        case .firmware(let firmware):
            // libvirt keeps its own copy of the variable store; the instance's is the template.
            boot = .firmware(loader: firmware.code, varsTemplate: firmware.vars)
        case .bios:
            throw WispError(.unsupported, "\(record.name) boots an ISO image, which a libvirt domain made by Wisp does not carry yet")
        }
        return try LibvirtDomainXML(name: domainName(record.name, files: files), spec: spec, disks: disks, boot: boot, serialLog: nil).xml()
    }

    static func chooseAccelerator(_ choice: AcceleratorChoice, connection: LibvirtConnection, uri: String,
                                  record: InstanceRecord) throws -> Accelerator {
        let kvm = connection.supportsKVM(architecture: record.spec.architecture)
            && (!isLocal(uri) || GuestArchitecture.host == record.spec.architecture)
        switch choice {
        case .tcg: return .tcg
        case .kvm:
            guard kvm else { throw WispError(.unsupported, "--accel kvm: the libvirt host \(uri) cannot run \(record.spec.architecture.rawValue) guests under KVM") }
            return .kvm
        case .auto: return kvm ? .kvm : .tcg
        }
    }

    static func savePlacement(_ placement: LibvirtPlacement, _ files: InstanceFiles) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicOutput.write(Array(try encoder.encode(placement)), to: placementFile(files), permissions: 0o600)
    }

    /// Starts the defined domain, marking where this boot's serial output begins.
    public static func start(_ placement: LibvirtPlacement, files: InstanceFiles) throws {
        let offset = (try? FileManager.default.attributesOfItem(atPath: files.serialLog)[.size] as? UInt64) ?? 0
        try? AtomicOutput.write(Array(String(offset).utf8), to: files.directory + "/serial.offset", permissions: 0o600)
        try LibvirtConnection(uri: placement.uri).start(domain: placement.domain)
    }

    /// The instance's state as libvirt reports it; a daemon that cannot be reached or a
    /// domain that is gone both read as stopped.
    public static func state(_ placement: LibvirtPlacement) -> InstanceState {
        guard let connection = try? LibvirtConnection(uri: placement.uri),
              let state = try? connection.state(ofDomain: placement.domain) else { return .stopped }
        switch state {
        case .running, .shutdown, .other: return .running
        case .paused: return .paused
        case .crashed: return .crashed
        case .shutoff: return .stopped
        }
    }

    /// The power button, then after `timeout` seconds (or at once with `force`) the plug.
    public static func stop(_ placement: LibvirtPlacement, force: Bool, timeout: Double) throws {
        let connection = try LibvirtConnection(uri: placement.uri)
        guard let state = try connection.state(ofDomain: placement.domain), state != .shutoff else { return }
        if !force && state == .running {
            try? connection.shutdown(domain: placement.domain)
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if (try? connection.state(ofDomain: placement.domain)) == .shutoff { return }
                usleep(250_000)
            }
        }
        try connection.destroy(domain: placement.domain)
    }

    /// Stops the domain, undefines it (with its UEFI variables) and deletes its volumes.
    public static func remove(_ placement: LibvirtPlacement) throws {
        let connection = try LibvirtConnection(uri: placement.uri)
        try connection.destroy(domain: placement.domain)
        try connection.undefine(domain: placement.domain)
        for volume in placement.volumes.reversed() {
            try connection.deleteVolume(pool: placement.pool, volume: volume)
        }
    }

    private static func removeAll(_ placement: LibvirtPlacement, connection: LibvirtConnection) {
        try? connection.destroy(domain: placement.domain)
        try? connection.undefine(domain: placement.domain)
        for volume in placement.volumes.reversed() {
            try? connection.deleteVolume(pool: placement.pool, volume: volume)
        }
    }
}
