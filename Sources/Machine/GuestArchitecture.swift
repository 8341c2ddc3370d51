/// The CPU architecture a guest runs. Named here even where Wisp has no board for it yet,
/// so an image of that architecture is refused by name instead of failing inside QEMU.
/// Raw values are QEMU's target names (`qemu-system-<raw value>`).
public enum GuestArchitecture: String, Codable, Sendable, CaseIterable {
    case x86_64, aarch64, riscv64, loongarch64
}
