import WispCore

/// How to boot a guest directly: the kernel, initrd and command line its own boot loader
/// would have used, as paths inside the guest's assembled filesystem view.
public struct BootPlan: Sendable, Codable, Equatable {
    /// The boot entry's source ("bls", "grub.cfg", "extlinux", "uki", "kernel-install", "scan").
    public var source: BootEntrySource
    public var title: String?
    public var version: String?
    /// Absolute path inside the guest, e.g. "/boot/vmlinuz-6.1.0-28-cloud-amd64".
    public var kernelPath: String
    public var initrdPaths: [String]
    public var commandLine: String
    /// Set when `kernelPath` is a unified kernel image: the kernel and initrd are its
    /// .linux and .initrd PE sections (KernelExtraction writes them out as files).
    public var unifiedKernelImage: Bool?
    /// The entry's id (BLS file stem, GRUB --id, extlinux LABEL), for --entry.
    public var entryID: String?
    /// The guest's CPU (`GuestReport.architecture`), which picks the machine's board.
    public var architecture: GuestArchitecture?

    public init(source: BootEntrySource, title: String? = nil, version: String? = nil, kernelPath: String,
                initrdPaths: [String], commandLine: String, unifiedKernelImage: Bool? = nil, entryID: String? = nil,
                architecture: GuestArchitecture? = nil) {
        self.architecture = architecture
        self.unifiedKernelImage = unifiedKernelImage
        self.entryID = entryID
        self.source = source
        self.title = title
        self.version = version
        self.kernelPath = kernelPath
        self.initrdPaths = initrdPaths
        self.commandLine = commandLine
    }
}
