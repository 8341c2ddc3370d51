import WispCore

/// One QEMU machine for one guest architecture: everything about the VM that depends on
/// the CPU architecture is asked of the board, so `QEMUCommandLine` has no architecture
/// test anywhere. A new architecture is one new file under Boards/ plus its case in
/// `Boards.for(_:)`.
public protocol Board: Sendable {
    var architecture: GuestArchitecture { get }
    /// The QEMU system emulator's file name, looked up on PATH ("qemu-system-x86_64").
    var qemuBinary: String { get }
    /// The Debian package that installs `qemuBinary`, named in the "not installed" error.
    var qemuPackage: String { get }
    /// `-machine` type ("q35") and its options ("vmport=off", "hpet=off").
    var machineType: String { get }
    var machineOptions: [String] { get }
    /// The `-cpu` model under an accelerator: the host's own CPU under KVM, the richest
    /// emulated one under TCG.
    func cpuModel(for accelerator: Accelerator) -> String
    /// Where the host's UEFI firmware for this board may be installed.
    var firmware: UEFIFirmwareSearch { get }
    /// The guest kernel's name for the serial port QEMU's `-serial` is wired to ("ttyS0").
    var serialConsole: String { get }
    var devices: BoardDevices { get }
    var capabilities: BoardCapabilities { get }
}

extension Board {
    /// The `-machine` value: type and options, comma-separated.
    public var machineArgument: String { ([machineType] + machineOptions).joined(separator: ",") }
}

/// The QEMU device names a board's VM is built from.
public struct BoardDevices: Sendable, Equatable {
    /// Each disk ("virtio-blk-pci").
    public var block: String
    /// The one user-mode NIC ("virtio-net-pci").
    public var network: String
    /// Properties added to the NIC after its netdev and MAC, e.g. `romfile=` (empty) so
    /// firmware finds no option ROM to attempt a network boot with.
    public var networkProperties: [String]
    /// The entropy source ("virtio-rng-pci"): a guest without one can wait minutes for
    /// randomness (sshd host keys, TLS).
    public var rng: String
    /// Each shared folder, a vhost-user virtio-fs device served by virtiofsd.
    public var sharedFolder: String
    /// The CD-ROM drive an ISO is attached to, given `drive=` and `bootindex=` after these
    /// properties ("ide-cd,bus=ide.0" on q35's built-in AHCI).
    public var cdrom: String
    /// A controller the CD-ROM drive needs and the board lacks ("virtio-scsi-pci,id=scsi0"
    /// on virt, which has no AHCI), or nil.
    public var cdromController: String?

    public init(block: String, network: String, networkProperties: [String], rng: String, sharedFolder: String = "vhost-user-fs-pci",
                cdrom: String, cdromController: String? = nil) {
        self.sharedFolder = sharedFolder
        self.cdrom = cdrom
        self.cdromController = cdromController
        self.block = block
        self.network = network
        self.networkProperties = networkProperties
        self.rng = rng
    }
}

/// What a board can do, where boards differ.
public struct BoardCapabilities: Sendable, Equatable {
    /// `-smbios type=1,serial=...` reaches the guest booted through firmware (NoCloud reads its seed URL from it
    /// under UEFI boot, when the kernel command line is not ours).
    public var supportsSMBIOS: Bool
    /// SMBIOS reaches the guest also when QEMU loads its kernel directly (`-kernel`). On
    /// x86 the tables are in memory for any kernel to find; on arm64 only UEFI firmware
    /// publishes them, so a directly booted kernel sees none.
    public var smbiosWithDirectKernelBoot: Bool
    /// The paravirtual panic device ("pvpanic"), or nil when the board has none: then a
    /// guest panic is not reported to QMP as `guest-panicked`.
    public var panicDevice: String?
    /// A legacy BIOS QEMU loads when no pflash firmware is given (SeaBIOS on q35), so a CD
    /// with only a BIOS El Torito entry can boot; false where UEFI is the only firmware.
    public var hasLegacyBIOS: Bool

    public init(supportsSMBIOS: Bool, smbiosWithDirectKernelBoot: Bool, panicDevice: String?, hasLegacyBIOS: Bool = false) {
        self.hasLegacyBIOS = hasLegacyBIOS
        self.supportsSMBIOS = supportsSMBIOS
        self.smbiosWithDirectKernelBoot = smbiosWithDirectKernelBoot
        self.panicDevice = panicDevice
    }
}

/// A UEFI firmware build: its code (mapped read-only, shared) and the template its
/// per-instance variable store is copied from.
public struct UEFIFirmwareFiles: Sendable, Equatable {
    public var code: String
    public var varsTemplate: String

    public init(code: String, varsTemplate: String) {
        self.code = code
        self.varsTemplate = varsTemplate
    }
}

/// Where to look for a board's firmware and what to call it when it is missing.
public struct UEFIFirmwareSearch: Sendable, Equatable {
    /// The firmware's name in messages ("OVMF").
    public var name: String
    /// The Debian package that installs it ("ovmf").
    public var package: String
    /// Code and vars pairs in order of preference; the first whose two files both exist wins.
    public var candidates: [UEFIFirmwareFiles]

    public init(name: String, package: String, candidates: [UEFIFirmwareFiles]) {
        self.name = name
        self.package = package
        self.candidates = candidates
    }
}

/// The board for each architecture Wisp can boot.
public enum Boards {
    public static func `for`(_ architecture: GuestArchitecture) throws -> any Board {
        switch architecture {
        case .x86_64: return X86_64Board()
        case .aarch64: return AArch64Board()
        case .riscv64, .loongarch64:
            throw WispError(.unsupported, "no board for \(architecture.rawValue) yet: Wisp boots x86_64 and aarch64 guests")
        }
    }
}
