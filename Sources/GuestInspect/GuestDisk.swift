import DiskImage
import FileSystems
import Partitions
import WispCore

/// A disk image opened for reading: its partition table, and every partition probed and
/// its filesystem opened, once (each costs a few small reads). `GuestInspector` builds the
/// guest's mount view on it; `wisp fs --partition` and `wisp image info` use it directly.
public final class GuestDisk: Sendable {
    public let device: any BlockDevice
    public let table: PartitionTable
    /// Every partition that can hold a filesystem (MBR extended containers and empty
    /// entries left out), in table order.
    public let volumes: [GuestVolume]

    public var name: String { device.name }

    /// Opens any image format Wisp reads (raw, qcow2, vmdk, vhd, vhdx, ...).
    /// Opens the image at `path` with its backing chain, which `policy` confines (by
    /// default to the image's own directory).
    public convenience init(path: String, policy: ExternalReferencePolicy = .confinedToImageDirectory) throws {
        try self.init(device: try DiskImageFile.open(path, policy: policy))
    }

    public init(device: any BlockDevice) throws {
        self.device = device
        table = try PartitionTable.read(from: device)
        var volumes: [GuestVolume] = []
        for partition in table.partitions where !partition.isExtendedContainer && partition.size > 0 {
            let slice = try partition.device(on: device)
            let kind: FileSystemKind?
            do {
                kind = try FileSystemProbe.probe(slice)
            } catch {
                volumes.append(GuestVolume(partition: partition, device: slice, kind: nil, fileSystem: nil,
                                           unreadable: Self.reason(error)))
                continue
            }
            guard let kind else {
                volumes.append(GuestVolume(partition: partition, device: slice, kind: nil, fileSystem: nil, unreadable: nil))
                continue
            }
            do {
                let fs = try FileSystemOpener.open(slice, as: kind)
                volumes.append(GuestVolume(partition: partition, device: slice, kind: kind, fileSystem: fs, unreadable: nil))
            } catch {
                volumes.append(GuestVolume(partition: partition, device: slice, kind: kind, fileSystem: nil,
                                           unreadable: Self.reason(error)))
            }
        }
        // An isohybrid image (installer and live ISOs) carries an MBR or GPT for USB sticks
        // whose partitions need not include the ISO 9660 filesystem that starts at byte 0
        // (Debian's first MBR entry is type 0, "empty"): the whole image is then one more
        // volume, listed first because it is what a CD drive would read.
        if table.scheme != .none, !volumes.contains(where: { $0.kind == .iso9660 && $0.partition.startOffset == 0 }),
           (try? FileSystemProbe.probe(device)) == .iso9660 {
            let whole = Partition(number: 0, startOffset: 0, size: device.size)
            do {
                volumes.insert(GuestVolume(partition: whole, device: device, kind: .iso9660,
                                           fileSystem: try FileSystemOpener.open(device, as: .iso9660), unreadable: nil), at: 0)
            } catch {
                volumes.insert(GuestVolume(partition: whole, device: device, kind: .iso9660, fileSystem: nil,
                                           unreadable: Self.reason(error)), at: 0)
            }
        }
        self.volumes = volumes
    }

    /// The ISO 9660 filesystem that spans the image from its first byte (a CD image, plain
    /// or isohybrid), if there is one Wisp can read: the tree of a live or installer medium.
    public var mediumVolume: GuestVolume? {
        volumes.first { $0.kind == .iso9660 && $0.partition.startOffset == 0 && $0.fileSystem != nil }
    }

    /// An error as a report field: its whole sentence (which names the device it is about).
    static func reason(_ error: any Error) -> String {
        (error as? WispError)?.message ?? "\(error)"
    }

    /// The volumes Wisp can read files from.
    public var readableVolumes: [GuestVolume] { volumes.filter { $0.fileSystem != nil } }

    /// The volumes `spec` names, in table order.
    public func volumes(matching spec: DeviceSpec) -> [GuestVolume] {
        volumes.filter(spec.matches)
    }

    /// The one volume `spec` names: none or several is an error listing what there is.
    public func volume(selectedBy spec: DeviceSpec) throws -> GuestVolume {
        let matches = volumes(matching: spec)
        guard let match = matches.first else {
            throw WispError.notFound("\(name): no partition or filesystem matches \"\(spec)\"; there are: "
                + volumes.map(\.displayName).joined(separator: ", "))
        }
        guard matches.count == 1 else {
            throw WispError.invalidArgument("\(name): \"\(spec)\" matches several: " + matches.map(\.displayName).joined(separator: ", "))
        }
        return match
    }

    /// The filesystem of the volume `spec` names, opened raw (no mounts).
    public func fileSystem(selectedBy spec: DeviceSpec) throws -> any FileSystem {
        let volume = try volume(selectedBy: spec)
        guard let fs = volume.fileSystem else {
            throw WispError.unsupported(name, "\(volume.displayName): " + (volume.unreadable ?? "no filesystem Wisp can read"))
        }
        return fs
    }
}
