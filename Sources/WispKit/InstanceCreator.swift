#if canImport(Glibc)
import Glibc
#endif
import CloudInit
import Foundation
import WispCore
import DiskImage
import GuestInspect
import ImageSources
import Machine
import MetadataService
import OCI

/// Creates a new instance directory for `wisp run`: resolves the image, claims a name,
/// makes the overlay, extracts the kernel, generates keys and the seed, writes
/// `instance.json` last. Any failure removes the directory: no half-made instance remains.
public struct InstanceCreator: Sendable {
    public var store: InstanceStore
    public var progress: @Sendable (String) -> Void
    /// Told the instance's name as soon as its directory is claimed.
    public var onClaimed: (@Sendable (String) -> Void)?
    /// Byte counts of downloads and pulls (label, done, total), for a progress meter; nil:
    /// they go to `progress` as lines.
    public var transfer: TransferProgress?

    public init(store: InstanceStore, progress: @escaping @Sendable (String) -> Void,
                onClaimed: (@Sendable (String) -> Void)? = nil) {
        self.store = store
        self.progress = progress
        self.onClaimed = onClaimed
    }

    public struct Created: Sendable {
        public var record: InstanceRecord
        /// The seed listener that hears phone_home; nil for a guest provisioned by systemd
        /// credentials (ready when SSH answers with its host key).
        public var metadata: MetadataServer?
        /// The instance's lock, held since its name was claimed: no other command touches
        /// the instance until the caller has booted it and lets go.
        public var lock: InstanceLock
        /// What the seed gave the guest, for a warm clone's identity script (which hands the
        /// same to a restored guest that never reads its seed): the instance-id, the keys
        /// authorized for the user, and the RSA/ECDSA/DSA host keys beside the ed25519 one.
        public var instanceID: String? = nil
        public var authorizedKeys: [String] = []
        public var otherHostKeys: [SSHHostKey] = []
    }

    public func create(_ options: RunOptions) async throws -> Created {
        // Fail on missing tools before any work (the board's QEMU too when --arch names it;
        // otherwise once the image has said its architecture).
        if let architecture = options.architecture {
            _ = try HostQEMU.executable(for: try Boards.for(architecture))
        }
        _ = try HostCommands.sshKeygen()
        _ = try HostCommands.ssh()
        for argument in options.kernelArguments where argument.isEmpty || argument.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } ?? false }) {
            throw WispError.usage("--karg \(argument.debugDescription): one argument per --karg, without spaces or control characters")
        }
        let firmwareAsked = options.boot == .uefi || options.boot == .bios
        if !options.kernelArguments.isEmpty && firmwareAsked { throw WispError.usage("--karg needs direct kernel boot: it cannot go with --boot \(options.boot.rawValue)") }
        if options.entry != nil && firmwareAsked { throw WispError.usage("--entry picks a kernel to boot directly: it cannot go with --boot \(options.boot.rawValue)") }
        if let cpus = options.cpus, !(1...256).contains(cpus) { throw WispError.usage("--cpus \(cpus): expected 1 to 256") }
        if let memory = options.memoryBytes, memory < 128 << 20 { throw WispError.usage("--memory: at least 128M is needed to boot a cloud image") }
        if let requested = options.name {
            try InstanceStore.validate(name: requested)
            // Checked again when the name is claimed; this early look saves a download or a
            // conversion for nothing. An incomplete directory (a killed run) is reclaimed then.
            if FileManager.default.fileExists(atPath: store.files(requested).record) {
                throw InstanceStore.nameTaken(requested)
            }
        }
        try HostPortCheck.ensureFree(options.forwards, store: store)
        if !options.mounts.isEmpty {
            try SharedFolder.checkDistinct(options.mounts)
            _ = try VirtiofsDaemon.find()
        }
        let allowed = try options.allowBacking.map(Self.allowedDirectory)
        let extraDisks = try options.extraDisks.map { disk -> DiskAttachment in
            let path = URL(fileURLWithPath: disk.path).standardizedFileURL.path
            guard FileManager.default.fileExists(atPath: path) else { throw WispError.notFound("--disk \(disk.path): no such file") }
            let chain = try BackingChain.resolve(path: path, policy: .confined(allowedDirectories: allowed))
            return InstanceDiskChains.attachment(chain, readOnly: disk.readOnly)
        }
        let userData = try options.userData.map { path -> String in
            guard let data = FileManager.default.contents(atPath: path) else { throw WispError.notFound("--user-data \(path): no such file") }
            return String(decoding: data, as: UTF8.self)
        }
        let hostKeys = try options.sshKeys.map { path -> String in
            guard let data = FileManager.default.contents(atPath: path) else { throw WispError.notFound("--ssh-key \(path): no such file") }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        let progress = self.progress
        let named = try CatalogImages(paths: store.paths).source(for: options.image, architecture: options.architecture)
        let source = try Self.configure(try named ?? ImageReference.parse(options.image), options, progress: progress, transfer: transfer)
        let context = ImageResolveContext(
            cache: ImageCacheDirectory(path: store.paths.images.path), expectedDigest: try options.digest.map(ImageReference.parseDigest),
            progress: { [transfer] done, total in
                if let transfer { return transfer("downloading", done, total) }
                progress("downloading: \(ByteSize.format(done))" + (total.map { " of \(ByteSize.format($0))" } ?? ""))
            },
            announce: progress)
        var resolved = try await source.resolve(context)
        // The name comes from the user's file, not from a copy Wisp made of it.
        let imageFile = resolved.archive != nil ? options.image : resolved.path
        var baseChain = try RunIntegration.baseChain(resolved, allowedDirectories: allowed)
        if ForeignFormatCache.needsConversion(baseChain) {
            // QEMU is handed qcow2 and raw only: other formats go through a cached qcow2.
            progress("image: " + RunIntegration.describe(baseChain))
            resolved.path = try ForeignFormatCache(images: store.paths.images.path).qcow2(for: baseChain, progress: progress)
            resolved.format = .qcow2
            baseChain = try BackingChain.resolve(path: resolved.path, format: .qcow2, policy: .selfContained)
        }
        if let archive = resolved.archive {
            progress("image: \(archive.description) \(options.image), \(archive.disks.count) disk(s) unpacked in the cache")
        }
        progress("image: " + RunIntegration.describe(baseChain))
        let options = Self.machineDefaults(options, from: resolved.archive, progress: progress)
        let base = resolved.path
        let baseSize = baseChain.top.virtualSize
        // An ISO boots as a read-only CD-ROM beside a blank disk, never behind an overlay.
        var medium = resolved.archive == nil ? ISOMedium.detect(baseChain) : nil
        if options.boot == .bios && medium == nil {
            throw WispError.usage("--boot bios boots an ISO image's El Torito BIOS entry; \(options.image) is not an ISO image (use --boot uefi)")
        }
        if medium != nil && options.provisioning == .systemd {
            throw WispError.usage("--provision systemd: an ISO's live system gets no systemd credentials from Wisp (the NoCloud seed is attached for cloud-init)")
        }
        // Disks only grow: shrinking would cut the guest's filesystems.
        // (A container image's disk was made at --disk-size already; an ISO's disk is blank.)
        var isContainer = false
        if case .container = resolved.origin { isContainer = true }
        if let wanted = options.diskSize, wanted < baseSize, !isContainer, medium == nil {
            throw WispError.usage("--disk-size \(ByteSize.format(wanted)) is smaller than the image (\(ByteSize.format(baseSize))): a disk can only grow")
        }

        // Kernel extraction happens before the name is claimed (the name comes from the OS).
        try FileManager.default.createDirectory(atPath: store.root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        // Locked while this run lives; ones whose run died are swept here.
        let stagingDirectory = try StagingDirectory(in: store.root)
        defer { stagingDirectory.remove() }
        let staging = stagingDirectory.path
        // Made beside the inspection (see GuestHostKeyGeneration); a guest provisioned by
        // systemd credentials cancels it.
        let extraHostKeys = options.provisioning == .systemd ? nil : try GuestHostKeyGeneration(in: staging)
        defer { extraHostKeys?.cancel() }
        var bootFacts: RunIntegration.BootFacts? = nil
        // Opened once: the boot plan, the architecture, cloud-init and what credentials need
        // are all read through it. An image that cannot be inspected (an unusual layout)
        // still boots through firmware; each question below then lets it through.
        let opened = Result { try GuestInspector(disk: try DiskImageFile.open(baseChain)) }
        let inspector = try? opened.get()
        medium?.read(inspector)
        if !firmwareAsked {
            progress("reading the boot plan of \(base)")
            do {
                bootFacts = try RunIntegration.extractBoot(try opened.get(), into: staging, entry: options.entry)
            } catch where options.boot == .auto && options.entry == nil {
                progress("no direct boot (\(error)); booting through \(medium == nil ? "UEFI firmware" : "the firmware from the CD-ROM")")
                bootFacts = nil
            }
            if bootFacts == nil && !options.kernelArguments.isEmpty {
                throw WispError.notFound("\(options.image): --karg needs direct kernel boot, and no kernel and boot entry were found for it")
            }
            if bootFacts == nil, let reason = RunIntegration.nothingToBoot(inspector, image: baseChain, name: options.image) {
                throw WispError.notFound(reason)
            }
            if bootFacts == nil && options.boot == .direct {
                throw WispError.notFound("\(options.image): no kernel and boot entry found for direct boot (use --boot uefi)")
            }
        }
        // The board is the guest's: --arch, else what its kernel or init says, else x86_64.
        let detected = bootFacts != nil ? bootFacts?.architecture : RunIntegration.guestArchitecture(inspector)
        let architecture = options.architecture ?? detected ?? .x86_64
        if let detected, let asked = options.architecture, detected != asked {
            progress("warning: the image looks \(detected.rawValue) but --arch \(asked.rawValue) was given; booting \(asked.rawValue)")
        }
        let board = try Boards.for(architecture)
        _ = try HostQEMU.executable(for: board)
        if options.cloudInit == .http && bootFacts != nil && !board.capabilities.smbiosWithDirectKernelBoot {
            throw WispError.usage("--cloud-init http needs SMBIOS, which a directly booted \(architecture.rawValue) kernel does not see: use --cloud-init disk (the default) or --boot uefi")
        }
        // An ISO's CD boots through UEFI or, with only a BIOS entry on x86_64, SeaBIOS.
        let mediumFirmware = bootFacts == nil ? try medium?.firmware(asked: options.boot, board: board, image: options.image) : nil
        let firmware = bootFacts == nil && mediumFirmware != .bios ? try HostQEMU.firmware(for: board) : nil
        extraHostKeys?.includeDSA = inspector.map(RunIntegration.phoneHomeReadsDSAKey) ?? false
        let provisioning = medium != nil ? .cloudInit
            : options.provisioning.resolve(imageHasCloudInit: bootFacts?.hasCloudInit ?? RunIntegration.hasCloudInit(anyOf: inspector))
        if provisioning == .systemd {
            if options.userData != nil {
                throw WispError.usage("--user-data needs cloud-init, which \(options.image) does not have (its keys and hostname come as systemd credentials)")
            }
            if let gap = RunIntegration.credentialProvisioningGap(inspector, name: options.image) {
                throw WispError(.unsupported, gap)
            }
            if !options.mounts.isEmpty, let gap = SharedFolderMounts.credentialGap(inspector?.view, image: options.image) {
                throw WispError(.unsupported, gap)
            }
            progress("no cloud-init in the image: provisioning root's SSH key, the host key and the hostname as systemd credentials")
        }

        if let medium, medium.cloudInitEvidence == nil, options.provisioning != .cloudInit, options.requiresSSH {
            throw WispError.usage("-- CMD runs over SSH, and " + ISOMedium.noWayInReason(image: options.image) + " (--provision cloud-init waits for SSH anyway)")
        }
        let nameBase = bootFacts.flatMap { facts in facts.osID.map { [$0, facts.osVersionID].compactMap { $0 }.joined(separator: "-") } }
            ?? URL(fileURLWithPath: imageFile).deletingPathExtension().lastPathComponent
        let (name, lock) = try store.claimLocked(requested: options.name, base: nameBase)
        onClaimed?(name)
        let files = store.files(name)
        do {
            return try build(lock: lock, name: name, files: files, board: board, options: options, resolved: resolved, baseChain: baseChain,
                             baseSize: baseSize, medium: medium, mediumFirmware: mediumFirmware, allowedBacking: allowed, provisioning: provisioning,
                             staging: staging, bootFacts: bootFacts, firmware: firmware, extraDisks: extraDisks, userData: userData, extraKeys: hostKeys,
                             extraHostKeys: extraHostKeys)
        } catch {
            try? FileManager.default.removeItem(atPath: files.directory)
            throw error
        }
    }

    private func build(lock: InstanceLock, name: String, files: InstanceFiles, board: any Board, options: RunOptions, resolved: ResolvedImage,
                       baseChain: BackingChain, baseSize: UInt64, medium: ISOMedium?, mediumFirmware: BootMode?,
                       allowedBacking: [String], provisioning: GuestProvisioning,
                       staging: String, bootFacts: RunIntegration.BootFacts?, firmware: UEFIFirmwareFiles?,
                       extraDisks: [DiskAttachment], userData: String?, extraKeys: [String],
                       extraHostKeys: GuestHostKeyGeneration?) throws -> Created {
        let fm = FileManager.default
        let base = resolved.path
        if medium != nil {
            // The ISO stays the user's file, attached read-only; the instance's own disk is
            // blank, for an installer to install to.
            let size = options.diskSize ?? ISOMedium.defaultDiskSize
            progress("\(name): creating a blank \(ByteSize.format(size)) disk (the ISO is attached read-only as a CD-ROM)")
            try RunIntegration.createBlankDisk(files.overlay, size: size)
        } else {
            let size = max(baseSize, options.diskSize ?? 0)
            progress("\(name): creating the overlay")
            try RunIntegration.createOverlay(base: baseChain, overlay: files.overlay, size: size)
        }

        // Phone home from the init stage when nothing asked for later stages' work.
        let earlyModules = userData == nil && !options.waitForFinalStage ? bootFacts?.initStageModules : nil
        var bootMethod: BootMethod
        if let facts = bootFacts {
            try fm.moveItem(atPath: facts.kernel, toPath: files.kernel)
            var initrd: String? = nil
            if let source = facts.initrd {
                try fm.moveItem(atPath: source, toPath: files.initrd)
                initrd = files.initrd
            }
            bootMethod = .direct(DirectBoot(kernel: files.kernel, initrd: initrd,
                                            commandLine: Self.guestCommandLine(facts.commandLine, board: board, cloudInit: options.cloudInit, seedURL: nil,
                                                                               networkStage: earlyModules != nil)))
        } else if mediumFirmware == .bios {
            bootMethod = .bios
        } else if let firmware {
            try AtomicOutput.copy(from: firmware.varsTemplate, to: files.uefiVars, permissions: 0o600)
            bootMethod = .firmware(UEFIFirmware(code: firmware.code, vars: files.uefiVars))
        } else {
            throw WispError(.failed, "no way to boot \(options.image)")
        }

        try InstanceSSH.generateKey(at: files.privateKey, comment: "wisp-\(name)")
        try InstanceSSH.generateKey(at: files.hostKey, comment: "wisp-\(name)-host")
        let hostPublic = try String(contentsOfFile: files.hostKey + ".pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let hostPrivate = try String(contentsOfFile: files.hostKey, encoding: .utf8)
        let keyParts = hostPublic.split(separator: " ")
        guard keyParts.count >= 2 else { throw WispError(.failed, "ssh-keygen wrote an unreadable host key at \(files.hostKey).pub") }
        try AtomicOutput.write(Array("wisp-\(name) \(keyParts[0]) \(keyParts[1])\n".utf8), to: files.knownHosts, permissions: 0o600)

        var authorized = Self.hostPublicKeys() + extraKeys
        authorized.append(try String(contentsOfFile: files.publicKey, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        let sshPort = try Self.freePort()
        let mac = options.macAddress ?? Self.macAddress(for: name)
        if provisioning == .systemd {
            let credentials = SystemdCredentialSet(authorizedKeys: authorized, hostKeyPrivate: hostPrivate, hostKeyPublic: hostPublic,
                                                   hostname: name, macAddress: mac, sharedFolders: options.mounts)
            if case .direct(var direct) = bootMethod, let facts = bootFacts {
                direct.commandLine = Self.credentialCommandLine(facts.commandLine, board: board, hostname: name)
                bootMethod = .direct(direct)
            }
            var spec = MachineSpec(architecture: board.architecture, cpus: options.cpus ?? RunOptions.defaultCPUs,
                                   memoryBytes: options.memoryBytes ?? RunOptions.defaultMemoryBytes, disks: [], forwards: [],
                                   boot: bootMethod, accelerator: .tcg, macAddress: mac)
            spec.boot = Self.appendingUserArguments(spec.boot, options.kernelArguments)
            spec.credentials = try credentials.write(to: files.credentialsDirectory)
            spec.disks = [DiskAttachment(path: files.overlay, format: .qcow2)] + extraDisks
            spec.forwards = [PortForward(hostPort: sshPort, guestPort: 22)] + options.forwards
            spec.sharedFolders = options.mounts
            var record = InstanceRecord(name: name, image: options.image, baseImagePath: base, baseImage: resolved, spec: spec,
                                        bootMode: bootFacts == nil ? .uefi : .direct, user: "root", hostname: name,
                                        sshPort: sshPort, cloudInit: options.cloudInit,
                                        osName: bootFacts.flatMap { f in f.osID.map { "\($0) \(f.osVersionID ?? "")".trimmingCharacters(in: .whitespaces) } })
            record.allowedBackingDirectories = allowedBacking
            record.provisioning = .systemd
            record.ephemeral = options.ephemeral
            try store.save(record)
            return Created(record: record, metadata: nil, lock: lock)
        }

        let user = options.user ?? Self.defaultUser()

        let metadata = try MetadataServer(seed: nil)
        let instanceID = "wisp-\(name)-\(UInt32.random(in: 0...UInt32.max))"
        let otherHostKeys = try extraHostKeys?.keys() ?? []
        let request = RunIntegration.SeedRequest(
            user: user, authorizedKeys: authorized, hostname: name, instanceID: instanceID,
            phoneHomeURL: metadata.guestPhoneHomeURL, staticNetwork: true, macAddress: mac,
            hostKeyPrivate: hostPrivate, hostKeyPublic: hostPublic, extraUserData: userData, initStageModules: earlyModules,
            sharedFolders: options.mounts, userID: options.mounts.isEmpty ? nil : SharedFolderMounts.guestUserID(),
            otherHostKeys: otherHostKeys)
        let seed = try RunIntegration.makeSeed(request)
        var disks = [DiskAttachment(path: files.overlay, format: .qcow2)]
        var server = metadata
        // An OVA's or box's other disks follow the boot disk, each behind an overlay of its own.
        for (index, archiveDisk) in (resolved.archive?.disks ?? []).enumerated().dropFirst() {
            let chain = try BackingChain.resolve(path: archiveDisk, policy: .selfContained)
            let overlay = files.archiveDiskOverlay(index + 1)
            try RunIntegration.createOverlay(base: chain, overlay: overlay, size: chain.top.virtualSize)
            disks.append(DiskAttachment(path: overlay, format: .qcow2))
        }
        var spec = MachineSpec(architecture: board.architecture, cpus: options.cpus ?? RunOptions.defaultCPUs,
                               memoryBytes: options.memoryBytes ?? RunOptions.defaultMemoryBytes, disks: [], forwards: [],
                               boot: bootMethod, accelerator: .tcg, macAddress: mac)
        if options.cloudInit == .disk {
            try RunIntegration.writeSeedDisk(seed, to: files.seed)
            disks.append(DiskAttachment(path: files.seed, format: .raw, readOnly: true))
        } else {
            // Same seed, served by our listener; the phone_home URL stays on this port.
            metadata.stop()
            server = try MetadataServer(seed: seed, port: metadata.port, token: metadata.token)
            try RunIntegration.storeSeed(seed, in: files)
            // The seed URL carries the listener's token: it goes in the SMBIOS serial, which
            // QEMU reads from an owner-only file, never on the kernel command line (QEMU's
            // argv, readable by every local user in /proc). NoCloud merges the serial's
            // `s=` with the command line's `ds=nocloud;dsmode=net`.
            spec.smbiosSerial = "ds=nocloud;dsmode=net;s=\(server.guestSeedURL)"
            if case .direct(var direct) = bootMethod {
                direct.commandLine = Self.guestCommandLine(bootFacts?.commandLine ?? "", board: board, cloudInit: .http, seedURL: nil,
                                                           networkStage: true)
                spec.boot = .direct(direct)
            }
        }
        spec.disks = disks + extraDisks
        spec.forwards = [PortForward(hostPort: sshPort, guestPort: 22)] + options.forwards
        spec.sharedFolders = options.mounts
        spec.boot = Self.appendingUserArguments(spec.boot, options.kernelArguments)
        spec.cdrom = medium?.path
        var record = InstanceRecord(name: name, image: options.image, baseImagePath: base, baseImage: resolved, spec: spec,
                                    bootMode: bootFacts != nil ? .direct : mediumFirmware == .bios ? .bios : .uefi, user: user, hostname: name,
                                    sshPort: sshPort, cloudInit: options.cloudInit,
                                    metadataPort: options.cloudInit == .http ? server.port : nil,
                                    metadataToken: options.cloudInit == .http ? server.token : nil,
                                    osName: bootFacts.flatMap { f in f.osID.map { "\($0) \(f.osVersionID ?? "")".trimmingCharacters(in: .whitespaces) } })
        record.allowedBackingDirectories = allowedBacking
        record.ephemeral = options.ephemeral
        // A live system without cloud-init never reads the seed: no SSH to wait for.
        record.consoleOnly = medium != nil && medium?.cloudInitEvidence == nil && options.provisioning != .cloudInit
        try store.save(record)
        return Created(record: record, metadata: server, lock: lock, instanceID: instanceID, authorizedKeys: authorized,
                       otherHostKeys: otherHostKeys)
    }

    /// A container image's pull and disk options from `wisp run`'s: the platform from
    /// `--platform`, else `--arch`; `--disk-size` sizes the root filesystem Wisp writes (a
    /// guest provisioned without cloud-init has nothing that would grow it later).
    static func configure(_ source: any ImageSource, _ options: RunOptions,
                          progress: @escaping @Sendable (String) -> Void, transfer: TransferProgress? = nil) throws -> any ImageSource {
        guard var container = source as? OCIImageSource else {
            if options.containerPlatform != nil || options.containerTLSVerify != nil {
                throw WispError.usage("--platform and --tls-verify are for container images (oci:, oci-archive:, docker-archive:, docker://); \(options.image) is not one")
            }
            return source
        }
        let platform = options.containerPlatform ?? options.architecture.map { "linux/" + ($0 == .aarch64 ? "arm64" : "amd64") }
        container.pullOptions.platform = try platform.map { try OCIPlatform(parsing: $0) }
        container.pullOptions.tlsVerify = options.containerTLSVerify
        container.pullOptions.progress = { p in
            if let transfer { return transfer("pulling", p.bytesDone, p.bytesTotal) }
            progress("pulling: \(ByteSize.format(p.bytesDone)) of \(ByteSize.format(p.bytesTotal)), layer \(min(p.layersDone + 1, p.layersTotal)) of \(p.layersTotal)")
        }
        container.diskOptions.size = options.diskSize
        return container
    }

    /// CPUs and memory the user did not give, from the OVF of an OVA or virtualbox box
    /// (within what `wisp run` accepts: 1 to 256 CPUs, at least 128 MiB).
    static func machineDefaults(_ options: RunOptions, from archive: MachineArchiveImage?,
                                progress: (String) -> Void) -> RunOptions {
        var options = options
        var taken: [String] = []
        if options.cpus == nil, let cpus = archive?.cpus {
            options.cpus = min(max(cpus, 1), 256)
            taken.append("\(options.cpus!) CPUs")
        }
        if options.memoryBytes == nil, let memory = archive?.memoryBytes {
            options.memoryBytes = max(memory, 128 << 20)
            taken.append(ByteSize.format(options.memoryBytes!) + " of memory")
        }
        if !taken.isEmpty { progress("machine: \(taken.joined(separator: ", ")) from the OVF descriptor (--cpus, --memory override)") }
        return options
    }

    /// An `--allow-backing` directory as an absolute, existing path.
    static func allowedDirectory(_ path: String) throws -> String {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw WispError.usage("--allow-backing \(path): no such directory")
        }
        return absolute
    }

    /// The guest's own command line plus what Wisp needs: the board's serial console (progress
    /// and `wisp console`) and the NoCloud datasource named outright, so cloud-init skips probing.
    /// `ds=nocloud` alone means dsmode "local" (cloud-init 22.4 and later): the init modules
    /// then run before the network is up. `networkStage` asks for dsmode "net", which an
    /// init-stage phone_home needs, and which a NoCloud-net seed needs on cloud-init
    /// releases that would otherwise fetch it and then skip it as "in local mode".
    static func guestCommandLine(_ original: String, board: any Board, cloudInit: CloudInitTransport, seedURL: String?, networkStage: Bool = false) -> String {
        var words = original.split(separator: " ").map(String.init).filter { !$0.hasPrefix("ds=") }
        let console = "console=\(board.serialConsole)"
        if !words.contains(where: { $0 == console || $0.hasPrefix(console + ",") }) { words.append("\(console),115200") }
        var datasource = "ds=nocloud"
        if networkStage { datasource += ";dsmode=net" }
        if cloudInit == .http, let seedURL { datasource += ";s=\(seedURL)" }
        words.append(datasource)
        return words.joined(separator: " ")
    }

    /// The command line of a guest provisioned by credentials: its own, the board's serial
    /// console, and the hostname for systemd (no datasource: there is no cloud-init).
    static func credentialCommandLine(_ original: String, board: any Board, hostname: String) -> String {
        var words = original.split(separator: " ").map(String.init).filter { !$0.hasPrefix("systemd.hostname=") }
        let console = "console=\(board.serialConsole)"
        if !words.contains(where: { $0 == console || $0.hasPrefix(console + ",") }) { words.append("\(console),115200") }
        words.append("systemd.hostname=\(hostname)")
        // An image that has cloud-init anyway (--provision systemd) must not let it run without
        // a datasource: its ssh module would replace the host key handed in as a credential.
        if !words.contains(where: { $0.hasPrefix("cloud-init=") }) { words.append("cloud-init=disabled") }
        return words.joined(separator: " ")
    }

    /// The user's `--karg` values after everything else on a direct boot's command line, so
    /// they win where the kernel takes the last of a repeated argument.
    static func appendingUserArguments(_ boot: BootMethod, _ arguments: [String]) -> BootMethod {
        guard !arguments.isEmpty, case .direct(var direct) = boot else { return boot }
        direct.commandLine = ([direct.commandLine] + arguments).filter { !$0.isEmpty }.joined(separator: " ")
        return .direct(direct)
    }

    /// The host user's name, unless that is root (cloud-init would reconfigure root): then
    /// "wisp".
    static func defaultUser() -> String {
        let name = ProcessInfo.processInfo.environment["USER"].flatMap { $0.isEmpty ? nil : $0 }
            ?? getpwuid(getuid()).flatMap { String(validatingCString: $0.pointee.pw_name) } ?? "wisp"
        let clean = name.lowercased().filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        if clean.isEmpty || clean == "root" || clean.first?.isNumber == true { return "wisp" }
        return clean
    }

    /// The host's own public keys (~/.ssh/*.pub), so plain `ssh` works too.
    static func hostPublicKeys() -> [String] {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        let dir = "\(home)/.ssh"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".pub") }.sorted()
        return names.compactMap { try? String(contentsOfFile: "\(dir)/\($0)", encoding: .utf8) }
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { $0.hasPrefix("ssh-") || $0.hasPrefix("ecdsa-") || $0.hasPrefix("sk-") }
    }

    /// A locally administered MAC derived from the name: stable across boots of one instance.
    static func macAddress(for name: String) -> String {
        var hasher = SHA256()
        hasher.update(Array(name.utf8))
        let d = hasher.finalize()
        return String(format: "52:54:00:%02x:%02x:%02x", d[0], d[1], d[2])
    }

    /// A free TCP port on 127.0.0.1 (the kernel picks; QEMU binds it moments later).
    static func freePort() throws -> UInt16 {
        let probe = try HTTPServerPortProbe()
        return probe.port
    }
}

/// Binds 127.0.0.1:0 to learn a free port, then releases it.
struct HTTPServerPortProbe {
    let port: UInt16
    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WispError.posix("socket", "127.0.0.1", errno: errno) }
        defer { close(fd) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else { throw WispError.posix("bind", "127.0.0.1:0", errno: errno) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = UInt16(bigEndian: sin.sin_port)
    }
}
