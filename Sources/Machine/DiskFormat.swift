/// A disk image format as QEMU's block layer names its driver: the raw values are what
/// `-drive format=` takes (and what instance.json has always stored), so they never change.
/// QEMU is always told the format: probing a raw image is unsafe (the guest could write a
/// qcow2 header into it).
public enum DiskFormat: String, Sendable, Codable, Equatable, CaseIterable {
    case raw, qcow2, vmdk
    /// VHD (Virtual PC): QEMU's driver is called vpc.
    case vpc
    case vhdx, vdi
}
