import ArgumentParser
import Foundation
import Machine
import WispCore
import WispKit

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Boot a cloud image or a bootable container image as a VM with SSH ready.",
        discussion: """
        IMAGE is a disk image file (qcow2 or raw; vmdk, vhd, vhdx and vdi are converted once to a qcow2 in the cache), \
        an OVA or a Vagrant box (libvirt or virtualbox provider), or an http(s) URL of any of \
        these, downloaded once into $XDG_CACHE_HOME/wisp/images. An OVA's manifest digests are \
        checked and its disks converted to qcow2, a box's disks unpacked, once per archive \
        content into the cache's archives/SHA256 directory; the first disk boots, the others \
        are attached after it, and the OVF's CPU count and memory are the defaults. The image is never written: the instance gets a \
        qcow2 overlay backed by it. An image from a URL must be self-contained (a backing or \
        external data file is refused); a local image's backing chain may use files in its own \
        directory and in --allow-backing directories only, and QEMU is handed exactly the files \
        Wisp checked. The distribution's own kernel is booted directly when Wisp \
        finds its boot entry (UEFI firmware otherwise). Returns when cloud-init has phoned home \
        and SSH answers; then use `wisp ssh NAME`. Without --user-data or -- CMD (and with \
        cloud-init 22.4 or later in the image) the guest phones home at the end of \
        cloud-init's init stage (user, keys, hostname, network and SSH config in place) while \
        the image's later modules go on in the background; --wait-final, --user-data and \
        -- CMD wait for cloud-init's final stage. Ctrl-C while it boots stops the VM (--rm \
        also removes it).

        IMAGE may also be an ISO image (a live or installer CD): it is attached read-only as \
        the CD-ROM (never written, never behind an overlay) beside a blank qcow2 disk of \
        --disk-size (default 20G) for an installer. When Wisp finds its kernel (isolinux, GRUB \
        or loader entries on the medium) it boots it directly with the serial console added to \
        the command line; otherwise the firmware boots the CD (UEFI, or SeaBIOS with \
        --boot bios or a BIOS-only catalog on x86_64). The NoCloud seed is attached as usual; \
        when the medium shows no cloud-init (its files and package lists; Wisp cannot look \
        inside a squashfs), `wisp run` says so and attaches to the serial console instead of \
        waiting for SSH. `wisp rm` removes the blank disk, never the ISO.

        IMAGE may also be a container image (oci:DIR[:TAG], oci-archive:FILE[:TAG], \
        docker-archive:FILE, docker://HOST/REPO[:TAG|@DIGEST]): it is pulled with every \
        digest checked and turned once into a cached, read-only ext4 disk keyed by its \
        manifest digest (--disk-size sizes it); the image's own kernel boots directly \
        (/usr/lib/modules/$KVER/vmlinuz with initramfs.img, or /boot/vmlinuz-*) with root= \
        naming that disk and the image's /usr/lib/bootc/kargs.d arguments. An image without \
        cloud-init gets root's SSH keys, the host key and the hostname as systemd \
        credentials (it needs systemd 252 or later and sshd); one with cloud-init gets the \
        seed. --ephemeral discards the instance's writes whenever it stops.

        Warm clones: the first run of an image with a given shape (image, architecture, \
        CPUs, memory, boot mode, disk size, machine, accelerator) also keeps a template \
        (a guest booted once with a throwaway identity, its memory saved and its disk \
        frozen, in $XDG_DATA_HOME/wisp/templates); later runs of that shape restore a clone \
        of it and give the clone its own hostname, machine-id, SSH host keys and keys, \
        cloud-init instance-id and clock before it is ready. --mount, --user-data, --disk, \
        --ephemeral, --detach, ISO images and the libvirt engine boot cold (said in one \
        line); --cold always does. `wisp images prune` removes templates no instance uses.

        Examples:
          wisp run debian-12-genericcloud-amd64.qcow2
          wisp run ubuntu-24.04 --arch aarch64                     # from the catalog, downloaded once
          wisp run --name web -p 8080:80 --memory 4G --disk-size 20G image.qcow2
          wisp run --rm image.qcow2 -- sh -c 'uname -a; exit 3'     # exits 3
          wisp run --disk-size 8G debian-12-netinst.iso            # an installer on the console
          wisp run appliance.ova                                   # CPUs and memory from its OVF
          wisp run --memory 1G debian12.box                        # a Vagrant box (libvirt or virtualbox)
          wisp run --mount ~/src:/src --mount ~/data:/data:ro image.qcow2   # shared folders (virtio-fs)
          wisp run --accel tcg image.qcow2                         # TCG even where KVM works
          wisp run --cold image.qcow2                              # a real boot, no warm clone
          wisp run --arch aarch64 --rm arm64.qcow2 -- uname -m     # an arm64 guest (read from the image anyway)
          wisp run oci-archive:fedora-bootc.tar                    # a bootc image saved by podman
          wisp run --rm --ephemeral docker://quay.io/fedora/fedora-bootc:42 -- rpm -q kernel
          wisp run --engine libvirt image.qcow2                     # a libvirt domain (qemu:///system as root)
          wisp run --engine libvirt:qemu:///session image.qcow2     # any libvirt URI
          wisp run --engine 'libvirt:qemu+ssh://admin@vmhost/system' image.qcow2   # a remote host, reached over ssh
        """)

    @Argument(help: "Image file, catalog name (debian-13, ubuntu; wisp images catalog), OVA, Vagrant box, http(s) URL or container image reference.") var image: String
    @Option(help: "Instance name (default: from the image's OS, e.g. debian-12).") var name: String?
    @Option(help: "Virtual CPUs (default: the OVF's for an OVA or box, else 2).") var cpus: Int?
    @Option(help: "Memory, e.g. 2G or 1536M; a bare number is MiB, as with qemu -m (default: the OVF's for an OVA or box, else 2G).") var memory: String?
    @Option(name: .customLong("disk-size"), help: "Grow the instance's disk to this size (e.g. 20G); for an ISO, the size of the blank disk (default 20G).") var diskSize: String?
    @Option(name: .customLong("ssh-key"), help: "Also authorize this public key file (repeatable).") var sshKeys: [String] = []
    @Option(name: [.customShort("p"), .customLong("publish")], help: "Forward [HOST_IP:]HOST_PORT:GUEST_PORT (repeatable; host IP defaults to 127.0.0.1).") var publish: [String] = []
    @Option(name: .customLong("mount"), help: ArgumentHelp("Share a host directory with the guest over virtio-fs, mounted at every boot: HOST_DIR[:GUEST_DIR][:ro] (repeatable; GUEST_DIR defaults to the host path). The guest user gets the host user's uid so both own the same files.", valueName: "HOST_DIR[:GUEST_DIR][:ro]")) var mounts: [String] = []
    @Option(name: .customLong("disk"), help: "Attach another disk image: FILE or FILE,readonly (repeatable).") var disks: [String] = []
    @Option(help: "auto (direct kernel boot when possible), direct, uefi, or bios (an ISO's El Torito BIOS entry, x86_64).") var boot: BootMode = .auto
    @Option(help: "The boot entry to boot directly: its id, title or number in `wisp inspect` (default: the image's default entry; for a container image, the newest kernel).") var entry: String?
    @Option(name: .customLong("karg"), help: "Append an argument to the kernel command line of a directly booted guest (repeatable), e.g. --karg systemd.unit=rescue.target.") var kargs: [String] = []
    @Option(help: "auto (KVM if it works, else TCG), kvm or tcg (default: the config file's accelerator, else auto).") var accel: AcceleratorChoice?
    @Option(help: ArgumentHelp("Who runs the machine: qemu (Wisp starts QEMU itself), or libvirt[:URI], a domain of a libvirt daemon (default URI qemu:///system as root, else qemu:///session); wisp ssh, stop, start and rm work the same.", valueName: "qemu|libvirt[:URI]")) var engine: String = "qemu"
    @Option(help: "Guest CPU architecture, when the image's own kernel or init does not say it (x86_64 or aarch64).") var arch: ArchitectureArgument?
    @Option(name: .customLong("user-data"), help: "Extra cloud-config merged into the seed.") var userData: String?
    @Option(name: .customLong("cloud-init"), help: "How the seed reaches the guest: disk (NoCloud seed disk) or http (NoCloud-net from Wisp's listener).") var cloudInit: CloudInitTransport = .disk
    @Option(help: "How the guest gets its user, keys and hostname: auto (cloud-init when the image has it, else systemd credentials), cloud-init or systemd.") var provision: ProvisioningChoice = .auto
    @Option(help: "Verify the image: sha256:HEX.") var digest: String?
    @Flag(help: "Return as soon as QEMU runs, without waiting for SSH.") var detach = false
    @Flag(help: "Attach to the serial console after starting (Ctrl-] detaches).") var console = false
    @Flag(help: "Remove the instance when done (with -- CMD: after CMD ran).") var rm = false
    @Option(help: "Seconds to wait for the guest to be ready.") var timeout: Double = 900
    @Flag(help: "Discard the instance's writes whenever it stops (each boot starts from the image).") var ephemeral = false
    @Option(help: "For a container image: os/arch[/variant] to pull from a multi-platform index (default: --arch, else this host's).") var platform: String?
    @Option(name: .customLong("tls-verify"), help: "For a container image: verify the registry's TLS certificate (false also allows plain HTTP).") var tlsVerify: Bool?
    @Flag(help: "Boot the image cold: never restore a warm clone of a template, nor make one (also WISP_COLD=1).") var cold = false
    @Flag(name: .customLong("wait-final"), help: "Count the guest ready only after cloud-init's final stage, not its init stage.") var waitFinal = false
    @OptionGroup var backing: BackingOptions
    @Argument(parsing: .postTerminator, help: "Command to run over SSH once ready.") var command: [String] = []

    func validate() throws {
        if detach && console { throw ValidationError("--detach and --console exclude each other") }
        if detach && !command.isEmpty { throw ValidationError("-- CMD needs the guest ready: drop --detach") }
    }

    func run() async throws {
        // Flags first, then $XDG_CONFIG_HOME/wisp/config.yaml, then Wisp's defaults.
        let config = try WispConfig.load()
        var options = RunOptions(image: image)
        options.name = name
        options.digest = digest
        options.cpus = cpus ?? config.cpus
        options.memoryBytes = try memory.map(ByteSize.parseMemory) ?? config.memoryBytes
        options.diskSize = try diskSize.map(ByteSize.parse) ?? config.diskSize
        options.sshKeys = sshKeys.isEmpty ? config.sshKeys ?? [] : sshKeys
        options.user = config.user
        options.forwards = try publish.map { try PortForward.parse($0) }
        options.mounts = try (mounts.isEmpty ? config.mounts ?? [] : mounts).map { try SharedFolder.parse($0) }
        options.extraDisks = try disks.map(RunOptions.parseDisk)
        options.boot = boot
        options.entry = entry
        options.kernelArguments = kargs
        options.accelerator = accel ?? config.accelerator ?? .auto
        options.architecture = arch?.guestArchitecture
        options.userData = userData
        options.allowBacking = backing.allowBacking
        options.cloudInit = cloudInit
        options.provisioning = provision
        options.timeout = timeout
        options.ephemeral = ephemeral
        options.containerPlatform = platform
        options.containerTLSVerify = tlsVerify
        options.libvirtURI = try LibvirtEngine.parseEngine(engine)
        options.waitForReady = !detach && !console
        options.cold = cold || ProcessInfo.processInfo.environment["WISP_COLD"] == "1"
        // A command to run (the CI use) gets a settled guest: every cloud-init stage done.
        options.waitForFinalStage = waitFinal || !command.isEmpty
        options.requiresSSH = !command.isEmpty
        let started = Date()
        let store = InstanceStore()
        let controller = InstanceController(store: store)
        // Ctrl-C or a CI runner's SIGTERM never leaves the instance booting unattended.
        let interruption = RunInterruption(store: store, removeOnInterrupt: rm)
        if !detach { interruption.install() }
        let record: InstanceRecord
        do {
            var runner = Runner(store: store, progress: RunProgress.report, onClaimed: interruption.track)
            runner.transfer = RunProgress.transfer
            record = try await runner.run(options)
        } catch {
            interruption.parkIfInterrupted()
            RunProgress.finish()
            // --rm means nothing of this run outlives it, a failed boot included.
            if rm, let name = interruption.trackedInstance { try? controller.remove(name, force: true) }
            throw error
        }
        // Ready: the instance is the user's now. Only `--rm -- CMD` still owns it (an
        // interrupted CI command must not leave the VM behind); the console needs its
        // terminal restored by its own code, not a signal handler.
        interruption.parkIfInterrupted()
        if !(rm && !command.isEmpty) { interruption.disarm() }
        RunProgress.finish()
        let files = store.files(record.name)
        if record.consoleOnly && !detach && !console {
            // The guest is booting: its way in is the console.
            FileOutput.standardError("wisp: \(record.name): " + record.noWayInSentence + "\n")
        }
        if console || (record.consoleOnly && !detach) {
            try SerialConsole.attach(files, name: record.name)
            if rm { try controller.remove(record.name, force: true) }
            return
        }
        if !command.isEmpty {
            let status = try InstanceSSH(record: record, files: files).run(command, tty: false)
            interruption.parkIfInterrupted()
            if rm {
                try controller.remove(record.name, force: true)
            } else {
                FileOutput.standardError("wisp: \(record.name) is still running (wisp ssh \(record.name); wisp rm -f \(record.name) removes it; --rm does that after CMD)\n")
            }
            throw ExitCode(status)
        }
        if rm {
            try controller.remove(record.name, force: true)
            return
        }
        FileOutput.standardError(ReadyLine.text(record, elapsed: Date().timeIntervalSince(started), detached: detach))
        print(record.name)
    }
}
