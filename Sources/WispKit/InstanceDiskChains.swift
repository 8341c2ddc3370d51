import DiskImage
import Foundation
import ImageSources
import Machine
import WispCore

/// Resolves, at every start, the backing chain of each disk an instance hands to QEMU, under
/// the policy its origin calls for, and spells it out in the machine spec so QEMU opens
/// exactly the checked files (`QEMUCommandLine.blockdevArguments`).
///
/// The overlay's chain may reach its base image's directory (the cache or where the user's
/// image is) and the directories the user allowed with `--allow-backing`; a base that came
/// from outside (a URL) must be self-contained. Extra `--disk` images follow the local
/// rules. A chain that breaks those rules, or changed since the instance was made, stops the
/// start with the sentence naming the field.
enum InstanceDiskChains {
    static func resolve(_ record: InstanceRecord, files: InstanceFiles) throws -> MachineSpec {
        var spec = record.spec
        // The CD-ROM is the user's ISO, opened read-only and raw: nothing to follow, but it
        // must still be there.
        if let cdrom = spec.cdrom, !FileManager.default.fileExists(atPath: cdrom) {
            throw WispError.notFound("\(record.name) boots from \(cdrom), which no longer exists")
        }
        let baseDirectory = (record.baseImagePath as NSString).deletingLastPathComponent
        for index in spec.disks.indices {
            let disk = spec.disks[index]
            // The seed is Wisp's own raw file: nothing to follow.
            if disk.path == files.seed && disk.format == .raw { continue }
            var allowed = record.allowedBackingDirectories
            if disk.path == files.overlay || files.isArchiveDiskOverlay(disk.path) {
                // An archive's disks all live in its one cache entry, the boot disk's directory.
                allowed.append(baseDirectory)
                if record.baseImage?.origin.isFromOutside == true {
                    try checkSelfContained(record.baseImagePath, format: record.baseImage?.format)
                    for other in record.baseImage?.archive?.disks.dropFirst() ?? [] { try checkSelfContained(other, format: nil) }
                }
            }
            let chain = try BackingChain.resolve(path: disk.path, format: ImageFormat(qemuDriverName: disk.format.rawValue),
                                                 policy: .confined(allowedDirectories: allowed))
            spec.disks[index] = attachment(chain, readOnly: disk.readOnly)
        }
        return spec
    }

    /// Makes an ephemeral instance's overlay empty again, on the same base and at the same
    /// size: a new overlay is written beside it and renamed over it, so a crash leaves either
    /// the old overlay or the new one. QEMU must not be running.
    static func resetOverlay(_ record: InstanceRecord, files: InstanceFiles) throws {
        let baseDirectory = (record.baseImagePath as NSString).deletingLastPathComponent
        let chain = try BackingChain.resolve(path: files.overlay, format: .qcow2,
                                             policy: .confined(allowedDirectories: record.allowedBackingDirectories + [baseDirectory]))
        if record.spec.cdrom != nil && chain.members.count == 1 {
            // An ISO instance's disk has no base: it starts blank again.
            let fresh = files.overlay + ".reset"
            unlink(fresh)
            try RunIntegration.createBlankDisk(fresh, size: chain.top.virtualSize)
            guard rename(fresh, files.overlay) == 0 else {
                let code = errno
                unlink(fresh)
                throw WispError.posix("rename", files.overlay, errno: code)
            }
            return
        }
        guard chain.members.count >= 2 else {
            throw WispError.corrupt(files.overlay, "qcow2 header", "the overlay of an ephemeral instance has no backing file")
        }
        let base = chain.members[1]
        let fresh = files.overlay + ".reset"
        unlink(fresh)
        try Qcow2Image.create(path: fresh, virtualSize: chain.top.virtualSize, backingFile: base.path,
                              backingFormat: base.format, backingPolicy: chain.policy)
        chmod(fresh, 0o600)
        guard rename(fresh, files.overlay) == 0 else {
            let code = errno
            unlink(fresh)
            throw WispError.posix("rename", files.overlay, errno: code)
        }
    }

    /// A base from outside Wisp may refer to no other file at all.
    static func checkSelfContained(_ path: String, format: ImageFormat?) throws {
        _ = try BackingChain.resolve(path: path, format: format, policy: .selfContained)
    }

    static func attachment(_ chain: BackingChain, readOnly: Bool) -> DiskAttachment {
        let layers = chain.members.dropFirst().map { member in
            DiskLayer(path: member.path, format: DiskFormat(member.format), dataFile: member.dataFile?.path)
        }
        return DiskAttachment(path: chain.top.path, format: DiskFormat(chain.top.format), readOnly: readOnly,
                              backing: Array(layers), dataFile: chain.top.dataFile?.path)
    }
}
