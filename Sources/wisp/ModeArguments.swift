import ArgumentParser
import WispKit

// Modes parse straight from the command line: a bad value is a usage error (exit 64) that
// lists the valid ones, and --help shows them.
extension BootMode: ExpressibleByArgument {}
extension CloudInitTransport: ExpressibleByArgument {}
