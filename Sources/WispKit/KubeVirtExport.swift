import CloudInit
import DiskImage
import Foundation
import Machine
import OCI
import WispCore
import Yams

/// `wisp export kubevirt`: a KubeVirt `VirtualMachine` (kubevirt.io/v1) whose root disk is
/// a `containerDisk` image Wisp pushes, and whose cloud-init comes from Wisp's own seed
/// generator as a `cloudInitNoCloud` volume.
///
/// What is in the manifest is not secret: the login user, its SSH public keys, the
/// hostname and a DHCP network-config. Wisp's per-instance host private key and the
/// instance's SSH private key stay on this host (a VirtualMachine is readable by anyone
/// who may read the namespace); the guest generates its own host keys at first boot.
public struct KubeVirtExport: Sendable {
    public var name: String
    public var image: String
    public var user: String
    public var authorizedKeys: [String]
    public var cpus: Int
    public var memoryBytes: UInt64

    public init(name: String, image: String, user: String, authorizedKeys: [String], cpus: Int, memoryBytes: UInt64) {
        self.name = name
        self.image = image
        self.user = user
        self.authorizedKeys = authorizedKeys
        self.cpus = cpus
        self.memoryBytes = memoryBytes
    }

    /// Kubernetes object names: DNS-1123 labels.
    public static func checkName(_ name: String) throws {
        guard name.range(of: "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", options: .regularExpression) != nil else {
            throw WispError(.invalidArgument, "\(name): a KubeVirt VirtualMachine name must be lowercase letters, digits and '-' (at most 63, starting and ending with a letter or digit); use --vm-name")
        }
    }

    /// The seed's user-data and network-data, from `SeedGenerator`.
    public func seed() throws -> (userData: String, networkData: String) {
        let options = SeedOptions(user: user, sshAuthorizedKeys: authorizedKeys, hostname: name)
        return (try SeedGenerator.userData(options, user: user), SeedGenerator.dhcpNetworkConfig())
    }

    /// The manifest as YAML.
    public func manifest() throws -> String {
        try Self.checkName(name)
        let (userData, networkData) = try seed()
        let memoryMiB = max(1, memoryBytes >> 20)
        let object: [String: Any] = [
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachine",
            "metadata": ["name": name, "labels": ["app.kubernetes.io/managed-by": "wisp"]],
            "spec": [
                "runStrategy": "Always",
                "template": [
                    "metadata": ["labels": ["kubevirt.io/vm": name]],
                    "spec": [
                        "domain": [
                            "cpu": ["cores": cpus],
                            "resources": ["requests": ["memory": "\(memoryMiB)Mi"]],
                            "devices": [
                                "disks": [
                                    ["name": "rootdisk", "disk": ["bus": "virtio"]],
                                    ["name": "cloudinitdisk", "disk": ["bus": "virtio"]],
                                ],
                                "interfaces": [["name": "default", "masquerade": [String: Any]()]],
                            ] as [String: Any],
                        ] as [String: Any],
                        "networks": [["name": "default", "pod": [String: Any]()]],
                        "volumes": [
                            ["name": "rootdisk", "containerDisk": ["image": image]],
                            ["name": "cloudinitdisk", "cloudInitNoCloud": ["userData": userData, "networkData": networkData]],
                        ],
                    ] as [String: Any],
                ] as [String: Any],
            ] as [String: Any],
        ]
        return try Yams.serialize(node: Self.literalBlocks(try Node(object)), sortKeys: true)
    }

    /// Multi-line strings (the user-data and network-data) as literal blocks, so the
    /// manifest shows them as the files they are rather than as escaped one-liners.
    static func literalBlocks(_ node: Node) -> Node {
        switch node {
        case .scalar(let scalar) where scalar.string.contains("\n") && !scalar.string.hasSuffix(" \n"):
            return Node(scalar.string, scalar.tag, .literal)
        case .mapping(let mapping):
            return Node(mapping.map { ($0.key, literalBlocks($0.value)) }, mapping.tag, mapping.style)
        case .sequence(let sequence):
            return Node(sequence.map(literalBlocks), sequence.tag, sequence.style)
        default:
            return node
        }
    }

    /// A stopped instance's disk (overlay on its checked backing chain) flattened into one
    /// standalone qcow2 at `output`: a containerDisk is a single file, no backing names.
    /// The instance stays locked meanwhile, so no start writes it while it is read.
    public static func flattenInstance(_ name: String, store: InstanceStore, to output: String,
                                       progress: (@Sendable (UInt64, UInt64) -> Void)? = nil) throws {
        let record = try store.load(name)
        let files = store.files(name)
        let lock = try InstanceLock(path: files.lock, name: name)
        defer { lock.release() }
        guard LibvirtEngine.placement(files) == nil else {
            throw WispError(.unsupported, "instance \(name) runs under libvirt: its disk is a volume of the daemon's wisp pool, which export kubevirt does not read (export it from the pool, or run the image with Wisp's QEMU)")
        }
        let (state, _) = InstanceState.probe(files)
        guard state == .stopped else {
            throw WispError(.busy, "instance \(name) is \(state.rawValue): stop it first (wisp stop \(name)) so its disk is read whole, not while the guest writes it")
        }
        var allowed = record.allowedBackingDirectories
        allowed.append((record.baseImagePath as NSString).deletingLastPathComponent)
        let chain = try BackingChain.resolve(path: files.overlay, format: .qcow2, policy: .confined(allowedDirectories: allowed))
        try flatten(try DiskImageFile.open(chain), to: output, progress: progress)
    }

    /// Any disk Wisp reads as one standalone qcow2 at `output`.
    public static func flatten(_ source: any BlockDevice, to output: String, progress: (@Sendable (UInt64, UInt64) -> Void)? = nil) throws {
        var options = ConvertOptions(format: .qcow2)
        options.progress = progress
        try ImageConverter.convert(input: source, to: output, options: options)
    }

    /// The OCI image architecture name of a guest architecture.
    public static func ociArchitecture(_ architecture: GuestArchitecture) -> String {
        switch architecture {
        case .x86_64: "amd64"
        case .aarch64: "arm64"
        case .riscv64: "riscv64"
        case .loongarch64: "loong64"
        }
    }
}
