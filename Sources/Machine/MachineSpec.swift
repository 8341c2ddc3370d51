import WispCore
/// What a virtual machine is made of, independent of how QEMU spells it.
public struct MachineSpec: Sendable, Codable, Equatable {
    /// The guest's CPU architecture, which picks the board (`Boards.for(_:)`).
    public var architecture: GuestArchitecture
    public var cpus: Int
    public var memoryBytes: UInt64
    public var disks: [DiskAttachment]
    public var forwards: [PortForward]
    public var boot: BootMethod
    public var accelerator: Accelerator
    /// The MAC address of the one user-mode NIC; fixed per instance so the guest's network
    /// configuration can match it.
    public var macAddress: String
    /// SMBIOS system serial (type 1); NoCloud reads `ds=nocloud;s=...` from it when the
    /// kernel command line is not ours (UEFI boot).
    public var smbiosSerial: String?
    /// systemd credentials for an image provisioned without cloud-init (see
    /// `SystemdCredential`); empty for cloud-init images.
    public var credentials: [SystemdCredential] = []
    /// Host directories shared over virtio-fs (`wisp run --mount`); empty for most guests.
    public var sharedFolders: [SharedFolder] = []
    /// An ISO image attached as the board's CD-ROM drive (`wisp run x.iso`), read-only: the
    /// file is opened with `read-only` at both block nodes, so QEMU never writes it.
    public var cdrom: String? = nil

    public init(architecture: GuestArchitecture = .x86_64, cpus: Int, memoryBytes: UInt64, disks: [DiskAttachment] = [],
                forwards: [PortForward] = [], boot: BootMethod = .firmware(UEFIFirmware(code: "", vars: "")),
                accelerator: Accelerator = .tcg, macAddress: String = "52:54:00:12:34:56", smbiosSerial: String? = nil) {
        self.architecture = architecture
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.disks = disks
        self.forwards = forwards
        self.boot = boot
        self.accelerator = accelerator
        self.macAddress = macAddress
        self.smbiosSerial = smbiosSerial
    }

    /// instance.json written before Wisp knew architectures has no `architecture`: those
    /// instances are x86_64, the only guests Wisp booted then.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        architecture = try container.decodeIfPresent(GuestArchitecture.self, forKey: .architecture) ?? .x86_64
        cpus = try container.decode(Int.self, forKey: .cpus)
        memoryBytes = try container.decode(UInt64.self, forKey: .memoryBytes)
        disks = try container.decode([DiskAttachment].self, forKey: .disks)
        forwards = try container.decode([PortForward].self, forKey: .forwards)
        boot = try container.decode(BootMethod.self, forKey: .boot)
        accelerator = try container.decode(Accelerator.self, forKey: .accelerator)
        macAddress = try container.decode(String.self, forKey: .macAddress)
        smbiosSerial = try container.decodeIfPresent(String.self, forKey: .smbiosSerial)
        credentials = try container.decodeIfPresent([SystemdCredential].self, forKey: .credentials) ?? []
        sharedFolders = try container.decodeIfPresent([SharedFolder].self, forKey: .sharedFolders) ?? []
        cdrom = try container.decodeIfPresent(String.self, forKey: .cdrom)
    }
}

/// A disk image attached as a virtio-blk device.
public struct DiskAttachment: Sendable, Codable, Equatable {
    public var path: String
    /// Told to QEMU, never probed by it (probing raw images is unsafe).
    public var format: DiskFormat
    public var readOnly: Bool
    /// The backing chain below `path` as Wisp resolved and checked it, nearest first; QEMU is
    /// given exactly these files, node by node, and the last one gets `backing: null`. Empty
    /// means the disk has no backing file (a qcow2 naming one anyway is not followed). Not
    /// stored in instance.json: it is resolved again, under the same policy, at every start.
    public var backing: [DiskLayer]
    /// The top file's qcow2 external data file, resolved like `backing` (runtime only).
    public var dataFile: String?

    public init(path: String, format: DiskFormat, readOnly: Bool = false, backing: [DiskLayer] = [], dataFile: String? = nil) {
        self.path = path
        self.format = format
        self.readOnly = readOnly
        self.backing = backing
        self.dataFile = dataFile
    }

    enum CodingKeys: String, CodingKey { case path, format, readOnly }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        format = try c.decode(DiskFormat.self, forKey: .format)
        readOnly = try c.decode(Bool.self, forKey: .readOnly)
        backing = []
        dataFile = nil
    }
}

/// One read-only file of a backing chain, or an external data file, as QEMU will open it.
public struct DiskLayer: Sendable, Codable, Equatable {
    /// Canonical (symlink-free) path: QEMU opens exactly the file Wisp checked.
    public var path: String
    public var format: DiskFormat
    /// A qcow2 external data file (its own path, opened raw).
    public var dataFile: String?

    public init(path: String, format: DiskFormat, dataFile: String? = nil) {
        self.path = path
        self.format = format
        self.dataFile = dataFile
    }
}

/// How the guest starts: its own kernel handed in directly, or firmware that runs the
/// guest's boot loader.
public enum BootMethod: Sendable, Codable, Equatable {
    case direct(DirectBoot)
    case firmware(UEFIFirmware)
    /// The board's legacy BIOS (SeaBIOS on x86_64), for a CD whose El Torito catalog has
    /// only a BIOS entry (isolinux): no pflash, the CD-ROM boots first.
    case bios
}

public struct DirectBoot: Sendable, Codable, Equatable {
    public var kernel: String
    public var initrd: String?
    public var commandLine: String

    public init(kernel: String, initrd: String?, commandLine: String) {
        self.kernel = kernel
        self.initrd = initrd
        self.commandLine = commandLine
    }
}

/// OVMF as two pflash devices: the code read-only and shared, the variable store a
/// per-instance copy (the guest writes boot entries into it).
public struct UEFIFirmware: Sendable, Codable, Equatable {
    public var code: String
    public var vars: String

    public init(code: String, vars: String) {
        self.code = code
        self.vars = vars
    }
}
