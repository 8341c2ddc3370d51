import DiskImage
import Foundation
import WispCore

/// `wisp image export --instance NAME`: the instance's disk as QEMU sees it (its overlay
/// with the base flattened in) written as an OVA. The instance must be stopped: a running
/// guest writes its overlay while it is read, and the copy would be a torn mix of before
/// and after. Its lock is held throughout, so no `wisp start` boots it half-way through.
public struct InstanceExporter: Sendable {
    public var store: InstanceStore

    public init(store: InstanceStore = InstanceStore()) { self.store = store }

    /// What the OVF says about the machine; nil fields come from the instance.
    public struct Overrides: Sendable {
        public var name: String?
        public var cpus: Int?
        public var memoryBytes: UInt64?
        public init(name: String? = nil, cpus: Int? = nil, memoryBytes: UInt64? = nil) {
            self.name = name
            self.cpus = cpus
            self.memoryBytes = memoryBytes
        }
    }

    public func export(_ name: String, to output: String, overrides: Overrides = Overrides(),
                       progress: (@Sendable (UInt64, UInt64) -> Void)? = nil) throws {
        let record = try store.load(name)
        let files = store.files(name)
        let lock = try InstanceLock(path: files.lock, name: name)
        defer { lock.release() }
        if LibvirtEngine.placement(files) != nil {
            throw LibvirtEngine.ownsDisk(name, verb: "wisp image export")
        }
        let (state, _) = InstanceState.probe(files)
        guard state == .stopped else {
            throw WispError(.busy, "instance \(name) is \(state.rawValue): stop it first (wisp stop \(name)) so its disk is read whole, not while the guest writes it")
        }
        // The same checked chain a start would hand QEMU: base self-contained when it came from outside.
        let spec = try InstanceDiskChains.resolve(record, files: files)
        guard let boot = spec.disks.first(where: { $0.path == files.overlay }) else {
            throw WispError.corrupt(files.record, "instance record", "lists no overlay disk")
        }
        var allowed = record.allowedBackingDirectories
        allowed.append((record.baseImagePath as NSString).deletingLastPathComponent)
        let chain = try BackingChain.resolve(path: boot.path, format: .qcow2, policy: .confined(allowedDirectories: allowed))
        let machine = OvaWriter.Machine(name: overrides.name ?? name, cpus: overrides.cpus ?? record.spec.cpus,
                                        memoryMiB: max(1, (overrides.memoryBytes ?? record.spec.memoryBytes) >> 20))
        try OvaWriter.export(try DiskImageFile.open(chain), to: output, machine: machine, progress: progress)
    }
}
