/// What a virtual machine is made of, independent of how QEMU spells it.
public struct MachineSpec: Sendable, Codable, Equatable {
    public var cpus: Int
    public var memoryBytes: UInt64

    public init(cpus: Int, memoryBytes: UInt64) {
        self.cpus = cpus
        self.memoryBytes = memoryBytes
    }
}
