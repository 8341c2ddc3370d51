/// How an instance's guest is started. `auto` is a request only: it becomes `direct` when
/// Wisp finds the guest's kernel and boot entry, `uefi` otherwise; an instance records
/// the mode it was actually booted with.
public enum BootMode: String, Sendable, Codable, CaseIterable {
    /// Direct kernel boot when a boot entry is found, UEFI firmware otherwise.
    case auto
    /// The distribution's own kernel, initrd and command line handed to QEMU.
    case direct
    /// Firmware (OVMF) runs the image's own boot loader.
    case uefi
    /// The board's legacy BIOS (SeaBIOS) runs the CD's boot loader: ISO images on x86_64
    /// whose El Torito catalog has a BIOS entry.
    case bios
}

/// How the NoCloud seed reaches the guest.
public enum CloudInitTransport: String, Sendable, Codable, CaseIterable {
    /// A read-only ISO 9660 seed disk labelled "cidata".
    case disk
    /// NoCloud-net: the same files served by Wisp's listener for this guest.
    case http
}
