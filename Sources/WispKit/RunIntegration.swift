#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore
import DiskImage
import CloudInit
import GuestInspect
import ImageSources
import Machine

/// The seam between `wisp run` and the image, inspection and seed layers: everything the
/// orchestration needs from them goes through here, in the layers' own APIs.
enum RunIntegration {
    struct BootFacts: Sendable {
        var kernel: String
        var initrd: String?
        var commandLine: String
        var osID: String?
        var osVersionID: String?
        /// The guest's architecture read from its kernel or init (nil: not found).
        var architecture: GuestArchitecture?
        /// The image's cloud-init init-stage module list, when its config could be read.
        var initStageModules: CloudInitModuleList?
        /// Whether the image carries cloud-init at all.
        var hasCloudInit: Bool
    }

    /// The base image's backing chain, checked before anything is made from it: an image
    /// from outside Wisp must be self-contained; a local one may refer to files in its own
    /// directory and in `allowedDirectories` (`--allow-backing`) only.
    static func baseChain(_ resolved: ResolvedImage, allowedDirectories: [String]) throws -> BackingChain {
        let policy: ExternalReferencePolicy = resolved.origin.isFromOutside ? .selfContained : .confined(allowedDirectories: allowedDirectories)
        return try BackingChain.resolve(path: resolved.path, format: resolved.format, policy: policy)
    }

    /// "base.qcow2 (qcow2) -> /images/debian.raw (raw)": the files a disk reads, top first.
    static func describe(_ chain: BackingChain) -> String {
        chain.members.map { member in
            var text = "\(member.path) (\(member.format.rawValue))"
            if let data = member.dataFile { text += " with data file \(data.path)" }
            return text
        }.joined(separator: " -> ")
    }

    /// A qcow2 overlay backed by `base`, at least `size` bytes (the guest's growpart grows
    /// its root partition into the rest).
    static func createOverlay(base: BackingChain, overlay: String, size: UInt64) throws {
        try Qcow2Image.create(path: overlay, virtualSize: size, backingFile: base.top.path, backingFormat: base.top.format,
                              backingPolicy: base.policy)
        chmod(overlay, 0o600)
    }

    /// An empty qcow2 of `size` bytes with no backing file (the disk beside an ISO).
    static func createBlankDisk(_ path: String, size: UInt64) throws {
        try Qcow2Image.create(path: path, virtualSize: size)
        chmod(path, 0o600)
    }

    /// Kernel, initrd and command line from the image's own boot entries, copied into
    /// `directory`; nil when the image has no plan Wisp can follow (boot UEFI instead).
    static func extractBoot(_ inspector: GuestInspector, into directory: String, entry: String? = nil) throws -> BootFacts? {
        // An EFI zboot kernel is unwrapped: QEMU 7.2's -kernel takes gzip zboot but not zstd.
        let extracted = try KernelExtraction.extract(from: inspector, to: directory, entry: entry, unwrapZboot: true)
        return BootFacts(kernel: extracted.kernelPath, initrd: extracted.initrdPath, commandLine: extracted.commandLine,
                         osID: extracted.osID, osVersionID: extracted.osVersionID, architecture: extracted.plan.architecture,
                         initStageModules: earlyReadinessModules(inspector), hasCloudInit: hasCloudInit(inspector))
    }

    /// cloud-init is there when its entry point or its configuration is: /usr/bin/cloud-init
    /// (Debian, Fedora, Ubuntu), /usr/local/bin/cloud-init (pip installs) or /etc/cloud/cloud.cfg.
    static func hasCloudInit(_ inspector: GuestInspector) -> Bool {
        guard let view = inspector.view else { return false }
        return ["/usr/bin/cloud-init", "/usr/local/bin/cloud-init", "/etc/cloud/cloud.cfg"].contains { view.exists($0) }
    }

    /// Why a guest provisioned by systemd credentials could not be reached over SSH, or nil:
    /// it needs sshd, and systemd 252 or later, whose tmpfiles `provision.conf` turns the
    /// `ssh.authorized_keys.root` and `tmpfiles.extra` credentials into files. Checked
    /// before booting, so an image that would never answer fails in a second, not at the
    /// timeout. An image that cannot be read is let through (the boot will tell).
    static func credentialProvisioningGap(_ inspector: GuestInspector?, name: String) -> String? {
        guard let view = inspector?.view else { return nil }
        func exists(_ paths: [String]) -> Bool { paths.contains { view.exists($0) } }
        if !exists(["/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd", "/usr/libexec/openssh/sshd"]) {
            return "\(name) has no sshd (looked for /usr/sbin/sshd and /usr/bin/sshd): Wisp reaches its guests over SSH, so the image must include an SSH server (openssh-server) enabled at boot"
        }
        if !exists(["/usr/lib/systemd/systemd", "/lib/systemd/systemd"]) {
            return "\(name) has no systemd (/usr/lib/systemd/systemd) and no cloud-init: Wisp has no way to hand it SSH keys (use an image with cloud-init or systemd 252 or later)"
        }
        if !exists(["/usr/lib/tmpfiles.d/provision.conf", "/lib/tmpfiles.d/provision.conf"]) {
            return "\(name) has no cloud-init and its systemd is older than 252 (no /usr/lib/tmpfiles.d/provision.conf), so it would ignore the SSH keys Wisp hands in as credentials: use an image with cloud-init or a newer systemd"
        }
        return nil
    }

    /// Why firmware would find nothing to boot on the image, or nil: a disk with neither a
    /// partition table nor a filesystem (a blank disk) would sit in the firmware's boot
    /// menu until the timeout. An image that cannot be inspected is let through.
    /// A blank disk cannot be inspected (there is no OS root), so its table and volumes are
    /// read on their own then.
    static func nothingToBoot(_ inspector: GuestInspector?, image: BackingChain, name: String) -> String? {
        guard let disk = inspector?.guestDisk ?? (try? GuestDisk(device: try DiskImageFile.open(image))) else { return nil }
        guard disk.table.scheme == .none, disk.volumes.allSatisfy({ $0.kind == nil }) else { return nil }
        return "\(name) has no partition table and no filesystem: there is nothing on it to boot (a blank disk?)"
    }

    /// The same for an image booted through firmware (no boot plan was read). An image that
    /// cannot be inspected counts as having cloud-init: the seed costs nothing if unread.
    static func hasCloudInit(anyOf inspector: GuestInspector?) -> Bool {
        inspector.map(hasCloudInit) ?? true
    }

    /// The guest's architecture from its kernel or init, for an image booted through
    /// firmware (no boot plan was read); nil when neither can be read.
    static func guestArchitecture(_ inspector: GuestInspector?) -> GuestArchitecture? {
        guard let inspector else { return nil }
        return (try? inspector.inspect())?.architecture ?? inspector.initArchitecture()
    }

    /// The init-stage module list to append set_passwords and phone_home to, or nil to leave
    /// phone_home in the final stage. Only cloud-init 22.4 and later: their set_passwords
    /// writes sshd's config without restarting a not-yet-started sshd (checked in 22.4.2's
    /// cc_set_passwords); older releases restart it, which from the init stage, ordered before
    /// sshd, can hang the boot.
    static func earlyReadinessModules(_ inspector: GuestInspector) -> CloudInitModuleList? {
        guard let version = guestCloudInitVersion(inspector), !VersionCompare.isLess(version, "22.4") else { return nil }
        return guestInitStageModules(inspector)
    }

    /// Whether the guest's cloud-init phone_home module reads the DSA host key (it did up to
    /// 23.x, and warns when the file is missing), from the module's own source.
    static func phoneHomeReadsDSAKey(_ inspector: GuestInspector) -> Bool {
        guard let bytes = guestCloudInitSource(inspector, "config/cc_phone_home.py", limit: 256 << 10) else { return false }
        return String(decoding: bytes, as: UTF8.self).contains("ssh_host_dsa_key.pub")
    }

    /// A file of the guest's cloud-init package (`cloudinit/PATH` under its Python's
    /// /usr/lib/python3*/{dist,site}-packages), the first found.
    static func guestCloudInitSource(_ inspector: GuestInspector, _ path: String, limit: UInt64) -> [UInt8]? {
        guard let view = inspector.view, let entries = try? view.list("/usr/lib") else { return nil }
        for python in entries.map(\.name).filter({ $0.hasPrefix("python3") }).sorted().prefix(16) {
            for packages in ["dist-packages", "site-packages"] {
                if let bytes = try? view.readFile("/usr/lib/\(python)/\(packages)/cloudinit/\(path)", limit: limit) { return bytes }
            }
        }
        return nil
    }

    /// cloud-init's version from its `cloudinit/version.py` under the guest's Python
    /// (/usr/lib/python3*/{dist,site}-packages), as `__VERSION__ = "22.4.2"`.
    static func guestCloudInitVersion(_ inspector: GuestInspector) -> String? {
        guard let bytes = guestCloudInitSource(inspector, "version.py", limit: 64 << 10),
              let text = String(validating: bytes, as: UTF8.self) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("__VERSION__") {
            let parts = line.split(separator: "\"")
            if parts.count >= 2, parts[1].allSatisfy({ $0.isNumber || $0 == "." }), !parts[1].isEmpty { return String(parts[1]) }
        }
        return nil
    }

    /// The init-stage module list of the guest's cloud-init: /etc/cloud/cloud.cfg, then
    /// /etc/cloud/cloud.cfg.d/*.cfg in name order, as cloud-init reads them. nil when any of
    /// it cannot be read (the seed then leaves the guest's lists alone).
    static func guestInitStageModules(_ inspector: GuestInspector) -> CloudInitModuleList? {
        guard let view = inspector.view else { return nil }
        let limit: UInt64 = 1 << 20
        var texts: [String] = []
        guard let main = try? view.readFile("/etc/cloud/cloud.cfg", limit: limit),
              let mainText = String(validating: main, as: UTF8.self) else { return nil }
        texts.append(mainText)
        if let entries = try? view.list("/etc/cloud/cloud.cfg.d") {
            let names = entries.map(\.name).filter { $0.hasSuffix(".cfg") }.sorted()
            guard names.count <= 256 else { return nil }
            for name in names {
                guard let bytes = try? view.readFile("/etc/cloud/cloud.cfg.d/" + name, limit: limit),
                      let text = String(validating: bytes, as: UTF8.self) else { return nil }
                texts.append(text)
            }
        }
        return CloudInitModuleList.merged("cloud_init_modules", from: texts)
    }

    struct SeedRequest: Sendable {
        var user: String
        var authorizedKeys: [String]
        var hostname: String
        var instanceID: String
        var phoneHomeURL: String?
        var staticNetwork: Bool
        var macAddress: String
        var hostKeyPrivate: String
        var hostKeyPublic: String
        var extraUserData: String?
        /// Phone home from the init stage with this module list (see `SeedOptions`).
        var initStageModules: CloudInitModuleList?
        /// Shared folders to mount at every boot, and the guest user's uid they call for.
        var sharedFolders: [SharedFolder] = []
        var userID: Int? = nil
        /// RSA and ECDSA host keys beside the ed25519 one Wisp checks (GuestHostKeyGeneration).
        var otherHostKeys: [SSHHostKey] = []
    }

    static func makeSeed(_ request: SeedRequest) throws -> NoCloudSeed {
        var options = SeedOptions(user: request.user, sshAuthorizedKeys: request.authorizedKeys, hostname: request.hostname,
                                  instanceID: request.instanceID, phoneHomeURL: request.phoneHomeURL,
                                  sshHostKeys: [SSHHostKey(type: .ed25519, privateKey: request.hostKeyPrivate, publicKey: request.hostKeyPublic)]
                                      + request.otherHostKeys,
                                  extraUserDataYAML: request.extraUserData, initStageModules: request.initStageModules)
        options.userID = request.userID
        options.bootcmd = SharedFolderMounts.bootCommands(request.sharedFolders, user: request.user, userID: request.userID)
        // User-mode networking's fixed layout, as a static address: it saves the DHCP round
        // trips of an emulated boot.
        if request.staticNetwork {
            options.network = StaticNetwork(address: UserModeNetwork.guestAddress, gateway: UserModeNetwork.host,
                                            dns: [UserModeNetwork.dns], macAddress: request.macAddress, interfaceName: "eth0")
        }
        return try SeedGenerator.makeSeed(options)
    }

    static func writeSeedDisk(_ seed: NoCloudSeed, to path: String) throws {
        try SeedImageWriter.write(seed, format: .iso, to: path)
    }
}

extension RunIntegration {
    /// The seed files kept in the instance directory for NoCloud-net re-serving.
    static func storedSeed(_ files: InstanceFiles) throws -> CloudInit.NoCloudSeed {
        let dir = files.directory + "/seed"
        func read(_ leaf: String) -> [UInt8]? { FileManager.default.contents(atPath: "\(dir)/\(leaf)").map { Array($0) } }
        guard let user = read("user-data"), let meta = read("meta-data") else {
            throw WispError.notFound("\(dir): the NoCloud-net seed files are missing")
        }
        return NoCloudSeed(userData: user, metaData: meta, vendorData: read("vendor-data"), networkConfig: read("network-config"))
    }

    static func storeSeed(_ seed: CloudInit.NoCloudSeed, in files: InstanceFiles) throws {
        let dir = files.directory + "/seed"
        try DirectoryCreation.createDirectories(dir, mode: 0o700)
        for file in seed.files { try AtomicOutput.write(file.contents, to: "\(dir)/\(file.name)", permissions: 0o600) }
    }
}
