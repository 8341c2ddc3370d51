import ArgumentParser
import Machine

// Options that name one of a fixed set parse straight into the enum: a bad value is a
// usage error listing the valid ones, and --help shows them.

extension AcceleratorChoice: ExpressibleByArgument {}
