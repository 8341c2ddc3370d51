/// An OVA or Vagrant box as kept in the image cache: its disks converted or unpacked
/// once into `<cache>/archives/<sha256 of the archive>/`, and the machine it describes.
public struct MachineArchiveImage: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable {
        case ova, box
    }

    public var kind: Kind
    /// Lowercase hex SHA-256 of the archive file: the cache key.
    public var sha256: String
    /// A box's provider ("libvirt", "virtualbox"); nil for an OVA.
    public var provider: String?
    /// Absolute paths of the disks in the cache, boot disk first.
    public var disks: [String]
    /// CPU count and memory from the OVF descriptor, when it says them.
    public var cpus: Int?
    public var memoryBytes: UInt64?

    public init(kind: Kind, sha256: String, provider: String? = nil, disks: [String], cpus: Int? = nil, memoryBytes: UInt64? = nil) {
        self.kind = kind
        self.sha256 = sha256
        self.provider = provider
        self.disks = disks
        self.cpus = cpus
        self.memoryBytes = memoryBytes
    }

    /// "OVA", "Vagrant box (libvirt)".
    public var description: String {
        kind == .ova ? "OVA" : "Vagrant box" + (provider.map { " (\($0))" } ?? "")
    }
}
