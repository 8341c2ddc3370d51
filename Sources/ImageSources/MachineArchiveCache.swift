#if canImport(Glibc)
import Glibc
#endif
import DiskImage
import Foundation
import WispCore

/// Makes the disks of an OVA or a Vagrant box usable as base images, once per archive
/// content: `<cache>/archives/<sha256 of the archive>/disk1.qcow2 ...` plus `machine.json`.
///
/// Why unpack at all: QEMU opens a disk only as a file of its own, never a VMDK inside a
/// tar, and a gzipped box cannot even be read at random. Why into the cache, keyed by the
/// archive's digest: the next run of the same archive (under any name, or downloaded again)
/// costs one hash, and a changed archive can never reuse a stale disk. Why qcow2 for an
/// OVA's VMDKs rather than raw: the entry stays the size of the data even on filesystems
/// without sparse files or when the cache is copied, and QEMU reads it natively. A
/// libvirt box's box.img is already qcow2 and is kept as it is, once it is shown to name no
/// other file. Entries are built in a staging directory and renamed into place whole, so a
/// failed or interrupted import leaves nothing a later run could mistake for a result.
public struct MachineArchiveCache: Sendable {
    public var cache: ImageCacheDirectory
    public var announce: (@Sendable (String) -> Void)?
    var limits = BoxUnpacker.Limits()

    public init(cache: ImageCacheDirectory, announce: (@Sendable (String) -> Void)? = nil) {
        self.cache = cache
        self.announce = announce
    }

    public var directory: String { "\(cache.path)/archives" }
    static let manifestName = "machine.json"
    static let maxDisks = 16

    /// The archive at `path` ready to use, or nil when it is neither an OVA nor a box.
    /// `sha256`: the archive's digest when already known (a download).
    public func importIfArchive(_ path: String, sha256: String? = nil) throws -> MachineArchiveImage? {
        guard let kind = MachineArchiveProbe.kind(of: path) else { return nil }
        return try importArchive(path, kind: kind, sha256: sha256)
    }

    public func importArchive(_ path: String, kind: MachineArchiveImage.Kind, sha256: String? = nil) throws -> MachineArchiveImage {
        let digest = try sha256 ?? ImageCacheDirectory.sha256(of: path)
        let entry = "\(directory)/\(digest)"
        if FileManager.default.fileExists(atPath: "\(entry)/\(Self.manifestName)") { return try load(entry) }
        try cache.create()
        try makeDirectory(directory)
        // Locked while this import lives; ones whose process died are swept here.
        let stagingDirectory = try StagingDirectory(in: directory, permissions: 0o755)
        defer { stagingDirectory.remove() }
        let staging = stagingDirectory.path
        announce?("unpacking the \(kind == .ova ? "OVA" : "Vagrant box") \(path) into the image cache (once)")
        var image = kind == .ova ? try buildOva(path, into: staging) : try buildBox(path, into: staging)
        image.sha256 = digest
        var stored = image
        stored.disks = image.disks.map { ($0 as NSString).lastPathComponent }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicOutput.write(Array(try encoder.encode(stored)), to: "\(staging)/\(Self.manifestName)", permissions: 0o644)
        if rename(staging, entry) != 0 {
            // Another wisp finished the same archive first: its entry is as good as ours.
            let code = errno
            guard code == EEXIST || code == ENOTEMPTY else { throw WispError.posix("rename", entry, errno: code) }
        }
        return try load(entry)
    }

    /// Reads a finished entry; its disks are leaf names inside it, and must exist.
    func load(_ entry: String) throws -> MachineArchiveImage {
        let manifest = "\(entry)/\(Self.manifestName)"
        guard let data = FileManager.default.contents(atPath: manifest), data.count <= 64 << 10,
              var image = try? JSONDecoder().decode(MachineArchiveImage.self, from: data) else {
            throw WispError.corrupt(manifest, "image cache entry", "unreadable (remove \(entry) to unpack the archive again)")
        }
        guard !image.disks.isEmpty else { throw WispError.corrupt(manifest, "image cache entry", "lists no disk") }
        image.disks = try image.disks.map { leaf in
            guard !leaf.contains("/"), leaf != "..", FileManager.default.fileExists(atPath: "\(entry)/\(leaf)") else {
                throw WispError.corrupt(manifest, "image cache entry", "disk \(leaf) is missing (remove \(entry) to unpack the archive again)")
            }
            return "\(entry)/\(leaf)"
        }
        return image
    }

    /// Every disk of the OVA (manifest digests checked first) converted to qcow2.
    func buildOva(_ path: String, into staging: String) throws -> MachineArchiveImage {
        let ova = try OvaArchive(path: path)
        let disks = ova.descriptor.disks
        guard !disks.isEmpty else { throw WispError.corrupt(path, "OVF descriptor", "describes no disk") }
        guard disks.count <= Self.maxDisks else {
            throw WispError.unsupported(path, "an OVA of \(disks.count) disks (Wisp takes at most \(Self.maxDisks))")
        }
        var paths: [String] = []
        for index in disks.indices {
            let target = "\(staging)/disk\(index + 1).qcow2"
            try ImageConverter.convert(input: try ova.openDisk(index), to: target, options: ConvertOptions(format: .qcow2))
            paths.append(target)
        }
        return MachineArchiveImage(kind: .ova, sha256: "", disks: paths, cpus: ova.descriptor.cpus, memoryBytes: ova.descriptor.memoryBytes)
    }

    /// The box's disks: a libvirt box's qcow2 (or raw) files as they are, a virtualbox box's
    /// VMDKs converted to qcow2.
    func buildBox(_ path: String, into staging: String) throws -> MachineArchiveImage {
        let contents = try BoxUnpacker(path: path, directory: staging, limits: limits).unpack()
        let metadata = try contents.metadataJSON.map { try BoxMetadata.parse($0, name: "\(path): metadata.json") }
        let provider = metadata?.provider ?? (contents.ovf != nil ? "virtualbox" : "libvirt")
        var image = MachineArchiveImage(kind: .box, sha256: "", provider: provider, disks: [])
        switch provider {
        case "libvirt":
            for (index, name) in (metadata?.diskPaths ?? ["box.img"]).enumerated() {
                guard let file = contents.files[name] else {
                    throw WispError.corrupt(path, "Vagrant box (libvirt)", "holds no regular file \(name), the disk its metadata names")
                }
                let format = try ImageFormat.probe(try FileBlockDevice(path: file))
                if let declared = metadata?.format, declared.lowercased() != format.rawValue {
                    throw WispError.corrupt(path, "metadata.json", "says format \(declared), but \(name) is \(format.rawValue)")
                }
                guard format == .qcow2 || format == .raw else {
                    throw WispError.unsupported(path, "\(name) is \(format.rawValue); a libvirt box's disk must be qcow2 or raw")
                }
                // A box's disk may name no other file: a backing file would reach the host.
                _ = try BackingChain.resolve(path: file, format: format, policy: .selfContained)
                let target = "\(staging)/disk\(index + 1).\(format.rawValue)"
                guard Glibc.rename(file, target) == 0 else { throw WispError.posix("rename", target, errno: errno) }
                image.disks.append(target)
            }
        case "virtualbox":
            guard let ovf = contents.ovf else {
                throw WispError.corrupt(path, "Vagrant box (virtualbox)", "holds no .ovf descriptor at its top")
            }
            let descriptor = try OvfDescriptor.parse(ovf.bytes, name: "\(path): \(ovf.name)")
            guard !descriptor.disks.isEmpty, descriptor.disks.count <= Self.maxDisks else {
                throw WispError.corrupt(path, ovf.name, "describes \(descriptor.disks.count) disks (1 to \(Self.maxDisks) expected)")
            }
            for (index, disk) in descriptor.disks.enumerated() {
                guard let file = contents.files[TarIndex.normalizedName(disk.href)] else {
                    throw WispError.corrupt(path, ovf.name, "disk \(disk.href) is not a file at the top of the box")
                }
                guard try ImageFormat.probe(try FileBlockDevice(path: file)) == .vmdk else {
                    throw WispError.unsupported(path, "\(disk.href) is not a VMDK (a virtualbox box's disks are)")
                }
                let target = "\(staging)/disk\(index + 1).qcow2"
                try ImageConverter.convert(input: try DiskImageFile.open(file, format: .vmdk, policy: .selfContained), to: target,
                                           options: ConvertOptions(format: .qcow2))
                image.disks.append(target)
            }
            image.cpus = descriptor.cpus
            image.memoryBytes = descriptor.memoryBytes
        default:
            throw WispError.unsupported(path, "Vagrant boxes for the \(provider.prefix(64)) provider (Wisp reads libvirt and virtualbox boxes)")
        }
        // The unpacked members not used (extracted VMDKs included) go now, not with staging.
        for (_, file) in contents.files where FileManager.default.fileExists(atPath: file) { unlink(file) }
        return image
    }

    private func makeDirectory(_ path: String) throws {
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else { throw WispError.posix("mkdir", path, errno: errno) }
    }
}
