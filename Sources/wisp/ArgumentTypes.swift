import ArgumentParser
import Machine
import WispCore
import WispKit

// Options that name one of a fixed set parse straight into the enum: a bad value is a
// usage error (exit 64) listing the valid ones, and --help shows them.

extension AcceleratorChoice: ExpressibleByArgument {}
extension BootMode: ExpressibleByArgument {}
extension CloudInitTransport: ExpressibleByArgument {}
extension ProvisioningChoice: ExpressibleByArgument {}

/// `--arch`: the guest architectures Wisp has a board for (riscv64 and loongarch64 are
/// named by GuestArchitecture but not bootable, so not offered).
enum ArchitectureArgument: String, CaseIterable, ExpressibleByArgument {
    case x86_64, aarch64

    var guestArchitecture: GuestArchitecture {
        switch self {
        case .x86_64: .x86_64
        case .aarch64: .aarch64
        }
    }
}
