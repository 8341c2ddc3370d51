import WispCore

/// A PC: QEMU's q35 chipset with virtio devices on PCI, OVMF as its UEFI firmware.
public struct X86_64Board: Board {
    public init() {}

    public var architecture: GuestArchitecture { .x86_64 }
    public var qemuBinary: String { "qemu-system-x86_64" }
    public var qemuPackage: String { "qemu-system-x86" }
    public var machineType: String { "q35" }
    /// No VMware I/O port and no HPET: neither is used by a virtio cloud guest, and the
    /// HPET costs timer interrupts under TCG.
    public var machineOptions: [String] { ["vmport=off", "hpet=off"] }

    public func cpuModel(for accelerator: Accelerator) -> String {
        switch accelerator {
        case .kvm: "host"
        case .tcg: "max"
        }
    }

    /// 4M builds first (Debian 12's default), then Debian's 2M build, Fedora's, Arch's.
    public var firmware: UEFIFirmwareSearch {
        UEFIFirmwareSearch(name: "OVMF", package: "ovmf", candidates: [
            UEFIFirmwareFiles(code: "/usr/share/OVMF/OVMF_CODE_4M.fd", varsTemplate: "/usr/share/OVMF/OVMF_VARS_4M.fd"),
            UEFIFirmwareFiles(code: "/usr/share/OVMF/OVMF_CODE.fd", varsTemplate: "/usr/share/OVMF/OVMF_VARS.fd"),
            UEFIFirmwareFiles(code: "/usr/share/edk2/ovmf/OVMF_CODE.fd", varsTemplate: "/usr/share/edk2/ovmf/OVMF_VARS.fd"),
            UEFIFirmwareFiles(code: "/usr/share/edk2/x64/OVMF_CODE.fd", varsTemplate: "/usr/share/edk2/x64/OVMF_VARS.fd"),
        ])
    }

    public var serialConsole: String { "ttyS0" }

    public var devices: BoardDevices {
        BoardDevices(block: "virtio-blk-pci", network: "virtio-net-pci", networkProperties: ["romfile="], rng: "virtio-rng-pci",
                     // q35's built-in AHCI: ahci and sr_mod are in every initramfs, so a live
                     // system finds its medium; SeaBIOS and OVMF both boot from it.
                     cdrom: "ide-cd,bus=ide.0")
    }

    /// pvpanic is the ISA device q35 has; SeaBIOS is QEMU's default firmware on it.
    public var capabilities: BoardCapabilities {
        BoardCapabilities(supportsSMBIOS: true, smbiosWithDirectKernelBoot: true, panicDevice: "pvpanic", hasLegacyBIOS: true)
    }
}
