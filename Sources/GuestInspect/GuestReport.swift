import Partitions
import WispCore

/// Everything `wisp inspect` reports about a guest image.
public struct GuestReport: Codable, Sendable, Equatable {
    public var image: String
    /// "gpt", "mbr" or "none" in JSON.
    public var partitionScheme: PartitionScheme
    public var partitions: [PartitionInfo]
    public var filesystems: [FileSystemInfo]
    /// The partition holding the OS root filesystem.
    public var rootPartition: Int?
    public var osRelease: OSRelease?
    public var fstab: [FstabEntry]
    public var bootEntries: [BootEntry]
    /// Index into `bootEntries`.
    public var defaultEntry: Int?
    public var defaultReason: String
    /// Facts about the default entry's kernel.
    public var kernel: KernelFacts?
    /// The CPU the guest runs: its kernel's, else that of its init's ELF header.
    public var architecture: GuestArchitecture?
    public var warnings: [String]
}

/// One way to boot the guest, as a boot loader configuration describes it. Paths are guest
/// paths in the assembled mount view ("/boot/vmlinuz-6.1.0-28-cloud-amd64"), or GRUB-style
/// "(hd0,gptN)/path" for a partition the guest does not mount.
public struct BootEntry: Codable, Sendable, Equatable {
    /// "grub.cfg", "bls", "extlinux", "uki", "kernel-install", "scan".
    public var source: BootEntrySource
    /// The file the entry came from.
    public var configPath: String
    /// BLS file stem, GRUB --id, extlinux LABEL, UKI file name.
    public var id: String
    public var title: String
    public var version: String?
    public var kernel: String
    public var initrds: [String]
    public var commandLine: String
    /// True when no entry gave a command line and Wisp built one.
    public var commandLineIsFallback: Bool
    /// Enclosing GRUB submenus, outermost first.
    public var submenu: [String]
    /// Rescue, recovery or kdump entries are never chosen as the default.
    public var isRescue: Bool
    /// For a UKI, the .linux/.initrd/.cmdline sections of `kernel` hold the boot files.
    public var isUnifiedKernelImage: Bool
}
