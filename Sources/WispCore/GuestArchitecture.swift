#if canImport(Glibc)
import Glibc
#endif

/// The CPU architecture a guest runs. Named here even where Wisp has no board for it yet,
/// so an image of that architecture is refused by name instead of failing inside QEMU.
/// Raw values are QEMU's target names (`qemu-system-<raw value>`). In WispCore because
/// both the reader of images (GuestInspect) and the machine (Machine) speak of it.
public enum GuestArchitecture: String, Codable, Sendable, CaseIterable {
    case x86_64, aarch64, riscv64, loongarch64

    /// The architecture this process runs on (KVM runs only guests of it).
    public static var host: GuestArchitecture? {
        var info = utsname()
        uname(&info)
        let machine = withUnsafeBytes(of: &info.machine) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        return GuestArchitecture(kernelName: machine)
    }

    /// From the names kernels, distributions and PE/ELF tools use: "amd64", "arm64",
    /// "aarch64", "x86_64", "riscv64", "loongarch64"/"loong64".
    public init?(kernelName name: String) {
        switch name {
        case "x86_64", "amd64", "x86-64": self = .x86_64
        case "aarch64", "arm64": self = .aarch64
        case "riscv64": self = .riscv64
        case "loongarch64", "loong64": self = .loongarch64
        default: return nil
        }
    }

    /// The ELF e_machine of a 64-bit executable for this architecture.
    public init?(elfMachine: UInt16) {
        switch elfMachine {
        case 62: self = .x86_64        // EM_X86_64
        case 183: self = .aarch64      // EM_AARCH64
        case 243: self = .riscv64      // EM_RISCV (ELFCLASS64)
        case 258: self = .loongarch64  // EM_LOONGARCH
        default: return nil
        }
    }
}
