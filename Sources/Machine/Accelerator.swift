/// How QEMU runs the guest's CPU: in hardware (KVM) or translated (TCG).
public enum Accelerator: String, Sendable, Codable, Equatable, CaseIterable {
    case kvm, tcg
}

/// What the user asked for: a given accelerator, or `auto` (KVM when it works on this host,
/// else TCG; see `AcceleratorProbe`).
public enum AcceleratorChoice: String, Sendable, Codable, Equatable, CaseIterable {
    case auto, kvm, tcg
}
