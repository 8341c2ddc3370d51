import ArgumentParser
import CloudInit
import DiskImage
import OCI
import Foundation
import WispCore
import WispKit

/// `wisp export ENGINE NAME`: an instance handed to another engine.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Describe an instance for another engine (libvirt domain XML, KubeVirt VirtualMachine).",
        discussion: """
        Prints what another engine needs to run the same machine: the same boot plan (the \
        extracted kernel, initrd and command line, or UEFI firmware), the overlay on its \
        checked backing chain, the NoCloud seed and the SSH forward. To run an instance \
        under libvirt directly, use wisp run --engine libvirt.

        Examples:
          wisp export libvirt web > web.xml && virsh define web.xml
          wisp export kubevirt web --push registry.example.com/me/web:1 > web-vm.yaml
        """,
        subcommands: [ExportLibvirtCommand.self, ExportKubeVirtCommand.self])
}

struct ExportLibvirtCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "libvirt", abstract: "Print an instance's (or an image's) libvirt domain XML.",
        discussion: """
        For an instance run with --engine libvirt, the definition Wisp gave the daemon (its \
        files are volumes of the daemon's wisp pool). For one Wisp runs itself, a domain over \
        the instance's own files on this host; stop the instance before starting the domain, \
        both would write the same overlay. The XML passes virt-xml-validate.

        SOURCE that is not an instance's name is an image (a file, a catalog name or a \
        container reference, as for wisp run): Wisp makes a stopped instance from it the way \
        wisp run would (overlay, extracted kernel, seed with the keys and host keys) without \
        booting it, and prints the domain over that instance's files; they stay until wisp \
        rm NAME. A domain never opens the image itself, so nothing writes to it.

        Examples:
          wisp export libvirt web
          wisp export libvirt web | virt-xml-validate - domain
          wisp export libvirt debian-12.qcow2 --name deb > deb.xml   # makes instance deb (stopped)
        """)

    @Argument(help: "Instance name, or an image (file, catalog name or container reference) to make a stopped instance from.") var source: String
    @Option(help: "Name of the instance made from an image (default: from the image's name).") var name: String?
    @Option(help: "vCPUs of the instance made from an image (default: config.yaml's, else 2).") var cpus: Int?
    @Option(help: "Memory of the instance made from an image, e.g. 2G (default: config.yaml's, else 2G).") var memory: String?
    @Option(help: "Disk size of the instance made from an image, e.g. 20G (default: the image's).") var diskSize: String?
    @Option(name: .customLong("ssh-key"), help: "Public key file to authorize (repeatable; default: config.yaml's, else ~/.ssh/*.pub).")
    var sshKeys: [String] = []
    @OptionGroup var backing: BackingOptions

    func validate() throws {
        if let cpus, !(1...256).contains(cpus) { throw ValidationError("--cpus \(cpus): expected 1 to 256") }
    }

    func run() async throws {
        let store = InstanceStore()
        if store.names().contains(source) {
            guard name == nil, cpus == nil, memory == nil, diskSize == nil, sshKeys.isEmpty else {
                throw ValidationError("\(source) is an instance: --name, --cpus, --memory, --disk-size and --ssh-key are for an image")
            }
            let record = try store.load(source)
            FileHandle.standardOutput.write(Data(try LibvirtEngine.domainXML(record, files: store.files(source)).utf8))
            return
        }
        // Flags first, then $XDG_CONFIG_HOME/wisp/config.yaml, then Wisp's defaults (as wisp run).
        let config = try WispConfig.load()
        var options = RunOptions(image: source)
        options.name = name
        options.cpus = cpus ?? config.cpus
        options.memoryBytes = try memory.map(ByteSize.parseMemory) ?? config.memoryBytes
        options.diskSize = try diskSize.map(ByteSize.parse) ?? config.diskSize
        options.sshKeys = sshKeys.isEmpty ? config.sshKeys ?? [] : sshKeys
        options.user = config.user
        options.allowBacking = backing.allowBacking
        options.waitForReady = false
        let creator = InstanceCreator(store: store, progress: { FileHandle.standardError.write(Data("wisp: \($0)\n".utf8)) })
        let created = try await creator.create(options)
        // Nothing boots here: the phone_home listener and the lock are not needed past this.
        created.metadata?.stop()
        created.lock.release()
        let instance = created.record.name
        let xml: String
        do {
            xml = try LibvirtEngine.domainXML(created.record, files: store.files(instance))
        } catch {
            // An instance whose domain cannot be written (an ISO, systemd credentials) is not kept.
            try? store.remove(instance)
            throw error
        }
        FileHandle.standardOutput.write(Data(xml.utf8))
        FileHandle.standardError.write(Data("wisp: made instance \(instance) (stopped) for this domain; its files stay in \(store.files(instance).directory) until wisp rm \(instance)\n".utf8))
    }
}

struct ExportKubeVirtCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kubevirt", abstract: "Push a disk as a KubeVirt containerDisk and print a VirtualMachine manifest.",
        discussion: """
        NAME is a stopped instance (its disk as it is now: overlay and backing chain \
        flattened into one qcow2; not one run with --engine libvirt), or IMAGE a local disk image file (any \
        format Wisp reads, OVA and box included) or a container reference (docker://, oci:, \
        ...; its disk as wisp run builds it). The disk is pushed with --push as a containerDisk \
        image: one uncompressed layer holding disk/NAME.qcow2 owned by 107:107. Blobs the \
        registry already has are not uploaded again. Credentials come from the same auth \
        files as pulls ($REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, \
        ~/.docker/config.json) or --authfile; loopback registries may speak plain HTTP.

        The manifest (kubevirt.io/v1 VirtualMachine, runStrategy Always) is printed, or \
        written with -o. Its cloudInitNoCloud volume has Wisp's user-data (the user, \
        passwordless sudo, the SSH public keys) and a DHCP network-config, inline. Public \
        keys only: nothing in the manifest is secret, which matters because anyone who can \
        read the namespace can read it. The instance's SSH private key and Wisp's generated \
        host keys stay on this host (the guest makes its own host keys, so check its host \
        key fingerprint on first login). For an instance, the keys are the instance's public \
        key plus any --ssh-key; for an image, ~/.ssh/*.pub unless --ssh-key is given.

        Examples:
          wisp export kubevirt web --push registry.example.com/me/web:1 > web-vm.yaml
          kubectl apply -f web-vm.yaml && virtctl ssh USER@vm/web
          wisp export kubevirt debian-12.qcow2 --vm-name deb --push 127.0.0.1:5000/wisp/debian:latest -o deb.yaml
        """)

    @Argument(help: "Instance name, or an image (file or container reference).") var source: String
    @Option(help: "Where to push the containerDisk image: REGISTRY/REPOSITORY:TAG (docker:// optional).") var push: String
    @Option(name: [.short, .customLong("output")], help: "Write the manifest to this file (default: standard output).") var output: String?
    @Option(name: .customLong("vm-name"), help: "The VirtualMachine's name (default: the instance's name, or the image file's name).") var vmName: String?
    @Option(help: "Login user for an image (default: the host user, or wisp as root); an instance keeps its own.") var user: String?
    @Option(name: .customLong("ssh-key"), help: "A public key file to authorize (repeatable).") var sshKeys: [String] = []
    @Option(help: "Virtual CPUs (default: the instance's, else 2).") var cpus: Int?
    @Option(help: "Memory, e.g. 2G (default: the instance's, else 2G).") var memory: String?
    @Option(name: .customLong("dest-tls-verify"), help: "Verify the registry's TLS certificate (false also allows plain HTTP).") var destTLSVerify: Bool?
    @Option(name: .customLong("authfile"), help: "Registry credentials file (default: the containers and docker ones).") var authFile: String?
    @OptionGroup var container: ContainerImageOptions

    func run() async throws {
        let target = push.hasPrefix("docker://") ? String(push.dropFirst("docker://".count)) : push
        guard case .registry(let reference) = try OCIReference.parse("docker://" + target) else {
            throw ValidationError("--push \(push): expected REGISTRY/REPOSITORY:TAG")
        }
        let store = InstanceStore()
        var keys = try sshKeys.map(Self.readPublicKey)
        let name: String, loginUser: String, cpuCount: Int, memoryBytes: UInt64, architecture: GuestArchitecture
        let disk: (any BlockDevice)?
        if FileManager.default.fileExists(atPath: store.files(source).record) {
            let record = try store.load(source)
            let files = store.files(source)
            name = vmName ?? source
            loginUser = record.user
            keys.insert(try Self.readPublicKey(files.publicKey), at: 0)
            cpuCount = cpus ?? record.spec.cpus
            memoryBytes = try memory.map(ByteSize.parseMemory) ?? record.spec.memoryBytes
            architecture = record.spec.architecture
            disk = nil
        } else {
            if OCIReference.hasTransport(source) {
                disk = try FileBlockDevice(path: try await container.baseDisk(source, requireKernel: false).path)
            } else {
                guard FileManager.default.fileExists(atPath: source) else {
                    throw WispError(.notFound, "\(source): no instance and no image file of that name (export kubevirt takes an instance, a local image file or a container reference)")
                }
                let (path, policy) = try ImageArgument.disk(source, policy: .selfContained)
                disk = try DiskImageFile.open(path, format: nil, policy: policy)
            }
            name = try vmName ?? Self.vmName(fromImage: source)
            loginUser = try user ?? SeedGenerator.defaultUser()
            if keys.isEmpty { keys = SeedGenerator.hostPublicKeys() }
            guard !keys.isEmpty else {
                throw ValidationError("no SSH public key: ~/.ssh has no *.pub; give one with --ssh-key FILE")
            }
            cpuCount = cpus ?? 2
            memoryBytes = try ByteSize.parseMemory(memory ?? "2G")
            architecture = GuestArchitecture.host ?? .x86_64
        }
        try KubeVirtExport.checkName(name)
        let export = KubeVirtExport(name: name, image: target, user: loginUser, authorizedKeys: keys,
                                    cpus: cpuCount, memoryBytes: memoryBytes)
        let manifest = try export.manifest()

        // The flattened disk and the layer hold the guest's whole disk: an owner-only staging
        // directory, swept by the next export if this one is killed.
        let parent = WispPaths().cacheHome.path + "/kubevirt-export"
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let staging = try StagingDirectory(in: parent)
        defer { staging.remove() }
        let work = staging.path
        let flat = work + "/disk.qcow2"
        let display = ProgressMeter("flattening", style: ProgressMeter.style(lines: false), keepsLine: false)
        try await display.track {
            if let disk {
                try KubeVirtExport.flatten(disk, to: flat, progress: { display.update($0, $1) })
            } else {
                try KubeVirtExport.flattenInstance(source, store: store, to: flat, progress: { display.update($0, $1) })
            }
        }
        let image = try ContainerDiskImage(disk: flat, diskName: name, layerPath: work + "/layer.tar",
                                           architecture: KubeVirtExport.ociArchitecture(architecture))
        let pusher = OCIPusher(reference: reference, tlsVerify: destTLSVerify, authFiles: authFile.map { [$0] })
        let outcome = try await pusher.push(image)
        FileHandle.standardError.write(Data(("pushed \(target)@\(outcome.manifestDigest): \(outcome.uploaded.count) blob(s) uploaded, "
            + "\(outcome.skipped.count) already there\n").utf8))
        if let output {
            try Data(manifest.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
        } else {
            FileHandle.standardOutput.write(Data(manifest.utf8))
        }
    }

    /// One authorized_keys line from a .pub file (bounded, one line).
    static func readPublicKey(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw WispError(.notFound, "\(path): cannot read the public key") }
        defer { try? handle.close() }
        let data = try handle.read(upToCount: 16 << 10) ?? Data()
        guard let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
              !text.isEmpty, !text.contains(where: \.isNewline), text.hasPrefix("ssh-") || text.hasPrefix("ecdsa-") || text.hasPrefix("sk-") else {
            throw WispError(.invalidArgument, "\(path): not one OpenSSH public key line")
        }
        return text
    }

    /// "debian-12-genericcloud-amd64.qcow2" -> "debian-12-genericcloud-amd64".
    static func vmName(fromImage image: String) throws -> String {
        var base = (image.split(separator: "/").last.map(String.init) ?? image).lowercased()
        if let dot = base.firstIndex(of: "."), base.startIndex != dot { base = String(base[..<dot]) }
        if let colon = base.firstIndex(of: ":") { base = String(base[..<colon]) }
        let cleaned = String(base.map { $0.isLetter && $0.isASCII || $0.isNumber && $0.isASCII ? $0 : "-" }.prefix(63))
        return cleaned.trimmingCharacters(in: CharacterSet(charactersIn: "-"))
    }
}
