/// Where a boot entry, and so a boot plan, came from. The raw values are what
/// `wisp inspect --json` and `wisp kernel extract --json` print.
public enum BootEntrySource: String, Codable, Sendable, CaseIterable {
    /// A menuentry in grub.cfg.
    case grubConfig = "grub.cfg"
    /// A Boot Loader Specification entry in loader/entries, read directly or through GRUB's blscfg.
    case bls
    /// A LABEL in extlinux.conf or syslinux.cfg.
    case extlinux
    /// A unified kernel image in EFI/Linux.
    case uki
    /// A kernel found by file name, with its command line from /etc/kernel/cmdline.
    case kernelInstall = "kernel-install"
    /// A kernel found by file name, no command line given (Wisp builds one).
    case scan
}
