import Machine
import WispCore

/// Everything `wisp run` was asked for, parsed and validated.
public struct RunOptions: Sendable {
    public var image: String
    public var digest: String?
    public var name: String?
    /// nil: what an OVA or box describes, else `defaultCPUs` (the same for memory).
    public var cpus: Int? = nil
    public var memoryBytes: UInt64? = nil
    public static let defaultCPUs = 2
    public static let defaultMemoryBytes: UInt64 = 2 << 30
    public var diskSize: UInt64? = nil
    public var sshKeys: [String] = []
    /// The login to create (the config file's `user`); nil: the host user's name, "wisp"
    /// for root.
    public var user: String? = nil
    public var forwards: [PortForward] = []
    /// Host directories shared with the guest (`--mount`), mounted at every boot.
    public var mounts: [SharedFolder] = []
    public var extraDisks: [(path: String, readOnly: Bool)] = []
    public var boot: BootMode = .auto
    /// The boot entry to boot directly (its id, title or index in `wisp inspect`); nil:
    /// the default entry, for a container image the newest kernel.
    public var entry: String? = nil
    /// Appended, in order, to the directly booted kernel's command line (`--karg`), after
    /// the image's own arguments and Wisp's.
    public var kernelArguments: [String] = []
    public var accelerator: AcceleratorChoice = .auto
    /// The guest's architecture as the user named it (`--arch`); nil: read from the image.
    public var architecture: GuestArchitecture? = nil
    public var userData: String? = nil
    /// Directories a local image's backing chain may reach besides its own (`--allow-backing`).
    public var allowBacking: [String] = []
    public var cloudInit: CloudInitTransport = .disk
    /// cloud-init seed or systemd credentials (`--provision`); auto: by what the image has.
    public var provisioning: ProvisioningChoice = .auto
    public var timeout: Double = 900
    public var waitForReady: Bool = true
    /// Count the guest ready only after cloud-init's final stage (phone_home where the image
    /// runs it). Otherwise, when Wisp wrote all of the user-data and the image's cloud-init
    /// is 22.4 or later, the guest phones home at the end of its init stage: users, keys, hostname and network are in place, and the
    /// image's config and final modules (locale, apt sources, ...) go on in the background.
    /// Given user-data or a command to run always waits for the final stage.
    public var waitForFinalStage: Bool = false
    /// Something must run over SSH once the guest is ready (`wisp run -- CMD`): a guest with
    /// no way in for SSH keys is refused before it is made.
    public var requiresSSH: Bool = false
    /// Discard the instance's writes whenever it stops: each boot starts from the base image
    /// (`--ephemeral`, as bcvk's ephemeral mode).
    public var ephemeral: Bool = false
    /// For a container image: `os/arch[/variant]` to pick from a multi-platform index
    /// (default: the `--arch` given, else this host's).
    public var containerPlatform: String? = nil
    /// For a container image: verify the registry's TLS (false also allows plain HTTP).
    public var containerTLSVerify: Bool? = nil
    /// The libvirt daemon to run the instance under (`--engine libvirt[:URI]`); nil: Wisp's
    /// own QEMU.
    public var libvirtURI: String? = nil
    /// Skip warm clones: boot the image cold even when a template of its shape exists
    /// (`--cold`).
    public var cold: Bool = false
    /// The guest NIC's MAC; nil: derived from the instance's name. A warm template and its
    /// clones share one (`WarmTemplate.macAddress`): the MAC is in the saved device state.
    public var macAddress: String? = nil

    public init(image: String) { self.image = image }

    /// `FILE` or `FILE,readonly` (also `ro`).
    public static func parseDisk(_ text: String) throws -> (path: String, readOnly: Bool) {
        if text.hasSuffix(",readonly") { return (String(text.dropLast(",readonly".count)), true) }
        if text.hasSuffix(",ro") { return (String(text.dropLast(",ro".count)), true) }
        return (text, false)
    }
}

/// A transfer's progress: what it is ("downloading", "pulling"), bytes done, bytes in all
/// when known.
public typealias TransferProgress = @Sendable (_ label: String, _ done: UInt64, _ total: UInt64?) -> Void
