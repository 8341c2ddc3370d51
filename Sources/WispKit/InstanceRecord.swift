import Foundation
import ImageSources
import Machine
import WispCore

/// What `instance.json` holds: everything needed to start the instance again, and what
/// `wisp list` shows. Runtime facts (pid, state) are not stored here but read from the
/// pid file and QMP, so a killed Wisp or a host reboot cannot leave a stale "running".
public struct InstanceRecord: Sendable, Codable, Equatable {
    /// The layout of this file. 1: the first release's records (no version field, modes as
    /// strings with the same values); 2: adds `formatVersion`, `metadataPort`, `metadataToken`,
    /// `baseImage`.
    /// Older records load unchanged; a newer version than this build knows is refused.
    public static let currentFormatVersion = 2
    public var formatVersion: Int
    public var name: String
    /// As the user gave it (path or URL).
    public var image: String
    /// The local base image the overlay is backed by (never written).
    public var baseImagePath: String
    /// What the image source resolved (format, digest, origin), when recorded (version 2).
    public var baseImage: ResolvedImage?
    public var createdAt: Date
    public var spec: MachineSpec
    /// The mode the guest was booted with: `.direct` or `.uefi`.
    public var bootMode: BootMode
    public var user: String
    public var hostname: String
    public var sshPort: UInt16
    public var cloudInit: CloudInitTransport
    /// The host port of Wisp's listener that serves a NoCloud-net seed (`cloudInit == .http`).
    public var metadataPort: UInt16?
    /// The listener's secret path prefix for this guest (see `MetadataServer`).
    public var metadataToken: String?
    /// OS facts from the image, for naming and display ("debian 12").
    public var osName: String?
    /// Directories beyond the base image's own that disks' backing chains may reach
    /// (`--allow-backing`).
    public var allowedBackingDirectories: [String] = []
    /// cloud-init seed or systemd credentials; records older than this field used cloud-init.
    public var provisioning: GuestProvisioning = .cloudInit
    /// Writes are discarded whenever the instance stops (`wisp run --ephemeral`).
    public var ephemeral: Bool = false
    /// The guest has no way in for SSH keys (an ISO whose system shows no cloud-init): it is
    /// ready when QEMU runs, and `wisp run` attaches to its serial console instead of waiting
    /// for SSH.
    public var consoleOnly: Bool = false
    /// The warm template (its key, a directory under `WispPaths.templates`) this instance's
    /// overlay backs onto; nil for an instance booted cold. `wisp images prune` keeps it.
    public var warmTemplate: String? = nil

    public init(name: String, image: String, baseImagePath: String, baseImage: ResolvedImage? = nil, createdAt: Date = Date(),
                spec: MachineSpec, bootMode: BootMode, user: String, hostname: String, sshPort: UInt16,
                cloudInit: CloudInitTransport, metadataPort: UInt16? = nil, metadataToken: String? = nil, osName: String?) {
        self.formatVersion = Self.currentFormatVersion
        self.name = name
        self.image = image
        self.baseImagePath = baseImagePath
        self.baseImage = baseImage
        self.createdAt = createdAt
        self.spec = spec
        self.bootMode = bootMode
        self.user = user
        self.hostname = hostname
        self.sshPort = sshPort
        self.cloudInit = cloudInit
        self.metadataPort = metadataPort
        self.metadataToken = metadataToken
        self.osName = osName
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion, name, image, baseImagePath, baseImage, createdAt, spec, bootMode, user, hostname, sshPort,
             cloudInit, metadataPort, metadataToken, osName, allowedBackingDirectories, provisioning, ephemeral, consoleOnly, warmTemplate
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        formatVersion = try c.decodeIfPresent(Int.self, forKey: .formatVersion) ?? 1
        guard formatVersion <= Self.currentFormatVersion else {
            throw WispError(.unsupported, "instance.json has format version \(formatVersion); this wisp reads up to \(Self.currentFormatVersion) (upgrade wisp)")
        }
        name = try c.decode(String.self, forKey: .name)
        image = try c.decode(String.self, forKey: .image)
        baseImagePath = try c.decode(String.self, forKey: .baseImagePath)
        baseImage = try c.decodeIfPresent(ResolvedImage.self, forKey: .baseImage)
        createdAt = try c.decode(Date.self, forKey: .createdAt)
        spec = try c.decode(MachineSpec.self, forKey: .spec)
        bootMode = try c.decode(BootMode.self, forKey: .bootMode)
        user = try c.decode(String.self, forKey: .user)
        hostname = try c.decode(String.self, forKey: .hostname)
        sshPort = try c.decode(UInt16.self, forKey: .sshPort)
        cloudInit = try c.decode(CloudInitTransport.self, forKey: .cloudInit)
        metadataPort = try c.decodeIfPresent(UInt16.self, forKey: .metadataPort)
        metadataToken = try c.decodeIfPresent(String.self, forKey: .metadataToken)
        osName = try c.decodeIfPresent(String.self, forKey: .osName)
        allowedBackingDirectories = try c.decodeIfPresent([String].self, forKey: .allowedBackingDirectories) ?? []
        provisioning = try c.decodeIfPresent(GuestProvisioning.self, forKey: .provisioning) ?? .cloudInit
        ephemeral = try c.decodeIfPresent(Bool.self, forKey: .ephemeral) ?? false
        consoleOnly = try c.decodeIfPresent(Bool.self, forKey: .consoleOnly) ?? false
        warmTemplate = try c.decodeIfPresent(String.self, forKey: .warmTemplate)
        if metadataPort == nil && cloudInit == .http { metadataPort = Self.legacySeedPort(spec) }
        // Version-1 guests fetch their NoCloud-net seed from the listener's root.
        if formatVersion == 1 && cloudInit == .http && metadataToken == nil { metadataToken = "" }
    }

    /// Version-1 records kept the NoCloud-net listener's port only inside the seed URL on the
    /// kernel command line (or the SMBIOS serial): read it from there once, when loading.
    static func legacySeedPort(_ spec: MachineSpec) -> UInt16? {
        let text: String
        switch spec.boot {
        case .direct(let d): text = d.commandLine
        case .firmware, .bios: text = spec.smbiosSerial ?? ""
        }
        guard let range = text.range(of: ";s=http://") else { return nil }
        let afterHost = text[range.upperBound...].drop(while: { $0 != ":" }).dropFirst()
        return UInt16(afterHost.prefix(while: { $0.isNumber }))
    }
}

/// The files of one instance directory.
public struct InstanceFiles: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public var record: String { "\(directory)/instance.json" }
    public var overlay: String { "\(directory)/overlay.qcow2" }
    /// The overlay on an OVA's or box's disk `number` (2 and up; 1 is `overlay`).
    public func archiveDiskOverlay(_ number: Int) -> String { "\(directory)/disk\(number)-overlay.qcow2" }
    public func isArchiveDiskOverlay(_ path: String) -> Bool {
        path.hasPrefix("\(directory)/disk") && path.hasSuffix("-overlay.qcow2")
    }
    public var kernel: String { "\(directory)/vmlinuz" }
    public var initrd: String { "\(directory)/initrd.img" }
    public var seed: String { "\(directory)/seed.iso" }
    public var privateKey: String { "\(directory)/id_ed25519" }
    public var publicKey: String { "\(directory)/id_ed25519.pub" }
    public var hostKey: String { "\(directory)/ssh_host_ed25519_key" }
    public var knownHosts: String { "\(directory)/known_hosts" }
    public var serialLog: String { "\(directory)/serial.log" }
    public var qmpSocket: String { "\(directory)/qmp.sock" }
    public var consoleSocket: String { "\(directory)/console.sock" }
    public var pidFile: String { "\(directory)/qemu.pid" }
    public var uefiVars: String { "\(directory)/OVMF_VARS.fd" }
    public var lock: String { "\(directory)/lock" }
    public var qemuCommand: String { "\(directory)/qemu.cmdline" }
    public var smbiosTable: String { "\(directory)/smbios-type1.bin" }
    public var qemuLog: String { "\(directory)/qemu.log" }
    public var smbiosOEMTable: String { "\(directory)/smbios-type11.bin" }
    /// systemd credentials, one owner-only file each (images without cloud-init).
    public var credentialsDirectory: String { "\(directory)/credentials" }
    /// The output of the virtiofsd processes serving shared folders (owner-only).
    public var virtiofsdLog: String { "\(directory)/virtiofsd.log" }
    /// A suspended guest's memory and device state (QEMU's migration stream; read-only,
    /// owner-only) and its description (`SavedState`), written last: its presence means
    /// suspended. The overlay is not touched until the state is loaded or discarded.
    public var savedState: String { "\(directory)/suspend.state" }
    public var savedStateDescription: String { "\(directory)/suspend.json" }

    public var runtimePaths: QEMUCommandLine.RuntimePaths {
        .init(qmpSocket: qmpSocket, consoleSocket: consoleSocket, serialLog: serialLog, pidFile: pidFile,
              smbiosTable: smbiosTable, qemuLog: qemuLog, smbiosOEMTable: smbiosOEMTable, sharedFolderSocketDirectory: directory)
    }
}
