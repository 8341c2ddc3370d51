/// What a generated NoCloud seed should set up. Everything optional has a default that
/// gives a reachable machine: the host user with passwordless sudo and bash, the host's SSH
/// keys, a fresh instance id.
public struct SeedOptions: Sendable, Equatable {
    /// Login name; nil means the host user (or "wisp" when that is root).
    public var user: String?
    /// authorized_keys lines for the user.
    public var sshAuthorizedKeys: [String]
    /// A crypt(3) hash (see `PasswordHasher`); enables password login when set.
    public var passwordHash: String?
    public var hostname: String?
    /// nil means a fresh "iid-<random>".
    public var instanceID: String?
    public var packages: [String]
    public var runcmd: [String]
    /// cloud-init's phone_home module posts all keys here when it finishes.
    public var phoneHomeURL: String?
    public var network: StaticNetwork?
    /// Host keys for the guest (cloud-init `ssh_keys`), so it does not generate its own and
    /// the host can verify it strictly.
    public var sshHostKeys: [SSHHostKey]
    /// Extra top-level cloud-config keys, as a YAML mapping, added to the generated ones.
    public var extraUserDataYAML: String?
    /// The image's own init-stage module list (`CloudInitModuleList.merged`). When set with
    /// `phoneHomeURL`, the user-data runs that list with phone_home appended, so the guest
    /// phones home at the end of the init stage, once users, keys and hostname are in place.
    /// The init stage must then run with the network up: NoCloud's dsmode "net" (the seed
    /// disk's default, and `ds=nocloud;dsmode=net` on a kernel command line).
    public var initStageModules: CloudInitModuleList?
    /// The user's numeric id (`users: uid:`); nil lets the guest pick. Wisp gives the guest
    /// user the host user's id when it shares folders, so files keep one owner on both sides.
    public var userID: Int? = nil
    /// Shell command lines cloud-init runs early at every boot (`bootcmd`), e.g. mounting
    /// shared folders.
    public var bootcmd: [String] = []

    public init(user: String? = nil, sshAuthorizedKeys: [String] = [], passwordHash: String? = nil,
                hostname: String? = nil, instanceID: String? = nil, packages: [String] = [],
                runcmd: [String] = [], phoneHomeURL: String? = nil, network: StaticNetwork? = nil,
                sshHostKeys: [SSHHostKey] = [], extraUserDataYAML: String? = nil,
                initStageModules: CloudInitModuleList? = nil) {
        self.user = user
        self.sshAuthorizedKeys = sshAuthorizedKeys
        self.passwordHash = passwordHash
        self.hostname = hostname
        self.instanceID = instanceID
        self.packages = packages
        self.runcmd = runcmd
        self.phoneHomeURL = phoneHomeURL
        self.network = network
        self.sshHostKeys = sshHostKeys
        self.extraUserDataYAML = extraUserDataYAML
        self.initStageModules = initStageModules
    }
}

/// A static address for the first Ethernet interface, written as network-config version 2.
public struct StaticNetwork: Sendable, Equatable {
    /// "ADDRESS/PREFIX", IPv4 or IPv6.
    public var address: String
    public var gateway: String?
    public var dns: [String]
    /// Interface name glob to match when no MAC address is given; the default matches eth*,
    /// ens*, enp*. Only the netplan renderer honours globs: cloud-init's networkd and ENI
    /// renderers need `macAddress`.
    public var interfaceMatch: String
    /// The NIC's MAC address (QEMU's `-device ...,mac=`): matched exactly and renamed to
    /// `interfaceName`, which works with every cloud-init network renderer.
    public var macAddress: String?
    public var interfaceName: String

    public init(address: String, gateway: String? = nil, dns: [String] = [], interfaceMatch: String = "e*",
                macAddress: String? = nil, interfaceName: String = "eth0") {
        self.address = address
        self.gateway = gateway
        self.dns = dns
        self.interfaceMatch = interfaceMatch
        self.macAddress = macAddress
        self.interfaceName = interfaceName
    }
}

/// One SSH host key pair for cloud-init's `ssh_keys` (`<type>_private`, `<type>_public`).
public struct SSHHostKey: Sendable, Equatable {
    public enum KeyType: String, Sendable, CaseIterable { case rsa, ecdsa, ed25519, dsa }

    public var type: KeyType
    /// The OpenSSH private key file's text ("-----BEGIN OPENSSH PRIVATE KEY-----" ...).
    public var privateKey: String
    /// The ".pub" line.
    public var publicKey: String

    public init(type: KeyType, privateKey: String, publicKey: String) {
        self.type = type
        self.privateKey = privateKey
        self.publicKey = publicKey
    }
}
