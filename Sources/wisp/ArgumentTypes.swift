import ArgumentParser
import Machine
import WispKit

// Options that name one of a fixed set parse straight into the enum: a bad value is a
// usage error (exit 64) listing the valid ones, and --help shows them.

extension AcceleratorChoice: ExpressibleByArgument {}
extension BootMode: ExpressibleByArgument {}
extension CloudInitTransport: ExpressibleByArgument {}
