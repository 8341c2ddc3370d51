import WispCore

/// An arm64 VM: QEMU's `virt` board with a GICv3, virtio devices on PCI, AAVMF/edk2 as its
/// UEFI firmware and the PL011 UART as console.
public struct AArch64Board: Board {
    public init() {}

    public var architecture: GuestArchitecture { .aarch64 }
    public var qemuBinary: String { "qemu-system-aarch64" }
    public var qemuPackage: String { "qemu-system-arm" }
    public var machineType: String { "virt" }
    /// `gic-version=max`: the newest GIC the accelerator can give, GICv3 under TCG and the
    /// host's own GIC under KVM (what `host` would pick), so one option serves both and a
    /// guest gets more than the 8 CPUs of virt's default GICv2.
    public var machineOptions: [String] { ["gic-version=max"] }

    /// Under TCG, `max` with pointer authentication computed by QEMU's cheap
    /// implementation-defined algorithm instead of the architected QARMA5, which costs more
    /// in emulation than anything else a Debian guest does (QEMU 6.0 and later; the guest
    /// sees pointer authentication either way, the keys are its own).
    public func cpuModel(for accelerator: Accelerator) -> String {
        switch accelerator {
        case .kvm: "host"
        case .tcg: "max,pauth-impdef=on"
        }
    }

    /// Only flash images padded to the 64 MiB of each of virt's two pflash banks: QEMU
    /// refuses a smaller one for `if=pflash`. Debian's AAVMF_*.fd and Fedora's *-pflash.raw
    /// are padded; the bare QEMU_EFI.fd both also ship (2 MiB, meant for `-bios`) is not
    /// listed, because `-bios` has no variable store to keep boot entries in.
    public var firmware: UEFIFirmwareSearch {
        UEFIFirmwareSearch(name: "AAVMF", package: "qemu-efi-aarch64", candidates: [
            UEFIFirmwareFiles(code: "/usr/share/AAVMF/AAVMF_CODE.fd", varsTemplate: "/usr/share/AAVMF/AAVMF_VARS.fd"),
            UEFIFirmwareFiles(code: "/usr/share/edk2/aarch64/QEMU_EFI-pflash.raw", varsTemplate: "/usr/share/edk2/aarch64/vars-template-pflash.raw"),
        ])
    }

    public var serialConsole: String { "ttyAMA0" }

    public var devices: BoardDevices {
        BoardDevices(block: "virtio-blk-pci", network: "virtio-net-pci", networkProperties: ["romfile="], rng: "virtio-rng-pci",
                     // virt has no AHCI: a virtio-scsi controller carries the CD-ROM.
                     cdrom: "scsi-cd,bus=scsi0.0", cdromController: "virtio-scsi-pci,id=scsi0")
    }

    /// virt builds SMBIOS tables, but only firmware hands them to the guest: a kernel
    /// booted directly finds none (on arm64 they are reached through the EFI system table).
    /// pvpanic-pci is the panic device virt can take (it has no ISA bus).
    public var capabilities: BoardCapabilities {
        BoardCapabilities(supportsSMBIOS: true, smbiosWithDirectKernelBoot: false, panicDevice: "pvpanic-pci")
    }
}
