import FileSystems
import Foundation
import OCI
import Partitions
import WispCore

/// Turns a pulled container image into a raw disk: a GPT with one root partition (the
/// architecture's root type), an ext4 filesystem holding the merged layers, written in
/// one pass from the layers into the disk (no unpacked directory, memory bounded by the
/// number of names), and a BLS entry for the image's newest kernel whose options are
/// `root=UUID=<fs uuid> rw` and the image's bootc kargs.d arguments.
///
/// The output appears atomically, complete or not at all. An image without a kernel still
/// becomes a disk (its files are readable with `wisp fs`); the report says it is not
/// bootable and `requireKernel` makes that an error instead.
public enum ContainerDiskBuilder {
    /// A GPT disk of 512-byte sectors: 1 MiB before the partition and 1 MiB after it
    /// (the backup table, rounded to the alignment).
    static let tableOverhead: UInt64 = 2 * GPTWriter.alignment

    public static func build(_ image: OCIPulledImage, reference: String, options: ContainerDiskOptions,
                             requireKernel: Bool = false, to path: String) throws -> ContainerDiskReport {
        let digest = (image.manifestDigest ?? image.configDigest).description
        let identity = ContainerDiskIdentity(key: "\(digest) \(options.cacheKey)")
        let merged = try MergedRootFS.build(layers: image.layers)
        let summary = merged.summary
        let architecture = GuestArchitecture(kernelName: image.platform.architecture)
        let kernels = ContainerKernel.find(in: merged)
        var warnings: [String] = []
        if kernels.isEmpty {
            let message = "\(reference): the image has no kernel (looked for /usr/lib/modules/*/vmlinuz and /boot/vmlinuz-*), so the disk is not bootable"
            if requireKernel { throw WispError(.notFound, message) }
            warnings.append(message)
        } else if kernels[0].initrd == nil && kernels[0].unified != true {
            warnings.append("\(reference): kernel \(kernels[0].version) has no initramfs beside it; the guest must mount its root without one")
        }

        if !kernels.isEmpty, let grub = merged.resolve(RootFSPath("boot/grub/grub.cfg")), case .regular = merged.entry(at: grub) {
            // Inspection lists GRUB's menu before BLS entries, and this menu was written for
            // another disk (its root= names that disk): boot with the BLS entry instead.
            warnings.append("\(reference): the image ships /boot/grub/grub.cfg, which no boot loader on this disk reads; its entries come first in `wisp inspect` and name another disk's root")
        }
        // What the boot entry needs from inside the image, captured while it streams by.
        var capture: Set<RootFSPath> = []
        let osRelease = merged.resolve(RootFSPath("etc/os-release")) ?? merged.resolve(RootFSPath("usr/lib/os-release"))
        if let osRelease { capture.insert(osRelease) }
        var kargsFiles: [(name: String, path: RootFSPath)] = []
        if let directory = merged.resolve(RootFSPath("usr/lib/bootc/kargs.d")), let names = merged.childNames(of: directory) {
            for name in names where name.count > 5 && name.suffix(5).elementsEqual(".toml".utf8) {
                let path = RootFSPath(bytes: directory.bytes + [UInt8(ascii: "/")] + name)
                guard case .regular = merged.entry(at: path) else { continue }
                kargsFiles.append(("/usr/lib/bootc/kargs.d/" + String(decoding: name, as: UTF8.self), path))
                capture.insert(path)
            }
        }

        let (diskSize, filesystemSize, inodeCount) = try sizes(summary, options: options, reference: reference)
        let partition = GPTWriterPartition(typeGUID: RootPartitionType.guid(for: architecture),
                                           uniqueGUID: identity.partitionGUID, name: "root", size: filesystemSize)
        let timestamp = creationTime(image.config.created)
        let output = try AtomicOutput(path: path, permissions: 0o644)
        do {
            try output.file.truncate(to: diskSize)
            let offsets = try GPTWriter.write([partition], diskGUID: identity.diskGUID, to: try FileBlockDevice(file: output.file))
            let writer = try Ext4Writer(file: output.file, offset: offsets[0], options: Ext4WriterOptions(
                size: filesystemSize, inodeCount: inodeCount, uuid: identity.filesystemUUID, label: "root",
                hashSeed: identity.hashSeed, timestamp: timestamp), fileIsZeroed: true)
            var sink = Ext4RootFSSink(writer: writer, capture: capture)
            try merged.emit(into: &sink)

            var files: [BootcKernelArguments.File] = []
            for file in kargsFiles {
                guard let bytes = sink.captured[file.path] else {
                    throw WispError.corrupt(reference, file.name, "larger than \(Ext4RootFSSink.captureLimit) bytes; not a kargs.d file")
                }
                files.append(BootcKernelArguments.File(name: file.name, text: String(decoding: bytes, as: UTF8.self)))
            }
            let kargs = try BootcKernelArguments.merge(files, architecture: architecture?.rawValue ?? image.platform.architecture)
            let osName = osRelease.flatMap { sink.captured[$0] }.flatMap { ContainerBootEntry.osName(fromOSRelease: String(decoding: $0, as: UTF8.self)) }
            // One entry per kernel (newest first, the default); `wisp run --entry` picks another.
            var entry: ContainerBootEntry?
            for kernel in kernels {
                let made = ContainerBootEntry(kernel: kernel, osName: osName, rootUUID: identity.filesystemUUID, kernelArguments: kargs)
                try write(made, into: writer, timestamp: timestamp)
                if entry == nil { entry = made }
            }
            _ = try writer.finish()
            try output.commit()
            return ContainerDiskReport(
                reference: reference, imageDigest: digest, platform: image.platform.description,
                layers: image.layers.map(\.descriptor.digest.description),
                layerBytes: image.layers.reduce(0) { $0 + UInt64(max(0, $1.descriptor.size)) },
                diskSize: diskSize, filesystemUUID: identity.filesystemUUID.uuidString.lowercased(),
                filesystemSize: filesystemSize, files: summary.regularFiles, fileBytes: summary.fileBytes,
                entries: summary.entryCount, kernels: kernels, bootEntry: entry, kernelArguments: kargs,
                osName: osName, warnings: warnings)
        } catch {
            output.discard()
            throw error
        }
    }

    /// The disk size, the root filesystem's size and its inode count: the content plus the
    /// headroom, or what `options.size` allows (refused when the content does not fit).
    static func sizes(_ summary: RootFSSummary, options: ContainerDiskOptions, reference: String) throws
        -> (disk: UInt64, filesystem: UInt64, inodes: UInt32) {
        // Room for the BLS entry and the directories it may need.
        let fileBytes = summary.fileBytes.addingReportingOverflow(summary.metadataBytes)
        guard !fileBytes.overflow else {
            throw WispError.corrupt(reference, "merged root filesystem", "file sizes add up to more than 2^64 bytes")
        }
        let plan = try Ext4Writer.plan(fileBytes: fileBytes.partialValue + 4096, entryCount: summary.entryCount + 4,
                                       directoryCount: summary.directories + 3, headroomPercent: options.headroomPercent)
        guard let wanted = options.size else {
            return (plan.size + tableOverhead, plan.size, plan.inodeCount)
        }
        let minimum = try Ext4Writer.plan(fileBytes: fileBytes.partialValue + 4096, entryCount: summary.entryCount + 4,
                                          directoryCount: summary.directories + 3, headroomPercent: 0)
        let disk = wanted / GPTWriter.alignment * GPTWriter.alignment
        guard disk >= minimum.size + tableOverhead else {
            throw WispError.invalidArgument("\(reference): a \(ByteSize.format(wanted)) disk cannot hold the image: it needs at least \(ByteSize.format(minimum.size + tableOverhead))")
        }
        return (disk, disk - tableOverhead, max(minimum.inodeCount, plan.inodeCount))
    }

    static func write(_ entry: ContainerBootEntry, into writer: Ext4Writer, timestamp: Timestamp) throws {
        let metadata = Ext4EntryMetadata(permissions: 0o644, modificationTime: timestamp)
        // An entry of the same name shipped in the image is replaced: it cannot know the
        // filesystem UUID this disk has.
        if try writer.contains(entry.path) { try writer.remove(entry.path) }
        try writer.addFile(entry.path, metadata: metadata, contents: Array(try entry.text().utf8))
    }

    /// The image's creation time (RFC 3339), for the filesystem's own timestamps; the
    /// epoch when it records none, so the disk stays reproducible.
    static func creationTime(_ text: String?) -> Timestamp {
        guard let text else { return Timestamp(seconds: 0) }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        guard let date = formatter.date(from: text) ?? plain.date(from: text) else { return Timestamp(seconds: 0) }
        let seconds = date.timeIntervalSince1970
        guard seconds.isFinite, seconds >= 0, seconds < 8_589_934_592 else { return Timestamp(seconds: 0) }
        return Timestamp(seconds: Int64(seconds))
    }
}
