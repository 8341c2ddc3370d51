import DiskImage
import FileSystems
import Partitions
import WispCore

/// One partition of a guest disk (or the whole disk when it has no table) and what is on
/// it: the filesystem kind its magic shows and, when Wisp has a reader for it, the open
/// filesystem. `problem` says why a recognised filesystem could not be opened.
public final class GuestVolume: @unchecked Sendable {
    public let partition: Partition
    public let device: any BlockDevice
    public let kind: FileSystemKind?
    public let fileSystem: (any FileSystem)?
    public let problem: String?

    init(partition: Partition, device: any BlockDevice, kind: FileSystemKind?, fileSystem: (any FileSystem)?, problem: String?) {
        self.partition = partition
        self.device = device
        self.kind = kind
        self.fileSystem = fileSystem
        self.problem = problem
    }

    /// "partition 15 (vfat, UEFI)" for messages.
    public var displayName: String {
        var parts: [String] = []
        if let kind { parts.append(kind.rawValue) }
        if let label = fileSystem?.label { parts.append("label \(label)") }
        if let name = partition.name { parts.append("PARTLABEL \(name)") }
        let what = partition.number == 0 ? "the whole disk" : "partition \(partition.number)"
        return parts.isEmpty ? what : "\(what) (\(parts.joined(separator: ", ")))"
    }
}

/// A disk image opened for reading files: its partition table and the filesystems on it,
/// probed and opened up front (each costs a few small reads). The entry point for
/// `wisp fs` and the partition part of `wisp image info`.
public final class GuestDisk: @unchecked Sendable {
    public let path: String
    public let device: any BlockDevice
    public let table: PartitionTable
    public let volumes: [GuestVolume]

    public init(path: String) throws {
        self.path = path
        let device = try DiskImageFile.open(path)
        let table = try PartitionTable.read(from: device)
        self.device = device
        self.table = table
        volumes = try table.partitions.filter { !$0.isExtendedContainer }.map { partition in
            let slice = try partition.device(on: device)
            let kind: FileSystemKind?
            do {
                kind = try FileSystemProbe.probe(slice)
            } catch {
                return GuestVolume(partition: partition, device: slice, kind: nil, fileSystem: nil, problem: "\(error)")
            }
            guard let kind else {
                return GuestVolume(partition: partition, device: slice, kind: nil, fileSystem: nil, problem: nil)
            }
            do {
                let fs = try FileSystemOpener.open(slice, as: kind)
                return GuestVolume(partition: partition, device: slice, kind: kind, fileSystem: fs, problem: nil)
            } catch {
                return GuestVolume(partition: partition, device: slice, kind: kind, fileSystem: nil, problem: "\(error)")
            }
        }
    }

    /// The volumes Wisp can read files from.
    public var readableVolumes: [GuestVolume] { volumes.filter { $0.fileSystem != nil } }

    /// Whether `fs` holds an operating system root (it has an os-release file).
    public static func holdsOSRoot(_ fs: any FileSystem) -> Bool {
        for path in ["/etc/os-release", "/usr/lib/os-release"] {
            if let info = try? fs.stat(path: path), info.type == .regular { return true }
        }
        return false
    }

    /// The filesystem `wisp fs` uses when not told: the one holding an OS root, else the
    /// only filesystem there is. Anything else needs `--partition`.
    public func defaultVolume() throws -> GuestVolume {
        let readable = readableVolumes
        if let root = readable.first(where: { $0.fileSystem.map(Self.holdsOSRoot) ?? false }) { return root }
        if readable.count == 1 { return readable[0] }
        if readable.isEmpty {
            let problems = volumes.compactMap { v in v.problem.map { "\(v.displayName): \($0)" } }
            throw WispError.notFound("\(path): no readable filesystem found"
                + (problems.isEmpty ? "" : " (" + problems.joined(separator: "; ") + ")"))
        }
        throw WispError.invalidArgument("\(path): \(readable.count) filesystems and none holds an OS root; choose one with --partition: "
            + readable.map(\.displayName).joined(separator: ", "))
    }

    /// The volume `selector` names: a partition number, or a filesystem label or UUID, a
    /// PARTUUID or a PARTLABEL, optionally spelled `LABEL=`, `UUID=`, `PARTUUID=`, `PARTLABEL=`.
    public func volume(matching selector: String) throws -> GuestVolume {
        let matches: [GuestVolume]
        if let number = Int(selector) {
            matches = volumes.filter { $0.partition.number == number }
        } else {
            let parts = selector.split(separator: "=", maxSplits: 1).map(String.init)
            let key = parts.count == 2 ? parts[0].uppercased() : nil
            let value = parts.count == 2 ? parts[1] : selector
            func same(_ a: String?, _ b: String) -> Bool { a?.lowercased() == b.lowercased() }
            matches = volumes.filter { v in
                let label = key == nil || key == "LABEL" ? v.fileSystem?.label == value : false
                let uuid = key == nil || key == "UUID" ? same(v.fileSystem?.uuid, value) : false
                let partUUID = key == nil || key == "PARTUUID" ? same(v.partition.uniqueGUID, value) : false
                let partLabel = key == nil || key == "PARTLABEL" ? v.partition.name == value : false
                return label || uuid || partUUID || partLabel
            }
        }
        guard let match = matches.first else {
            throw WispError.notFound("\(path): no partition or filesystem matches \"\(selector)\"; there are: "
                + volumes.map(\.displayName).joined(separator: ", "))
        }
        guard matches.count == 1 else {
            throw WispError.invalidArgument("\(path): \"\(selector)\" matches several: " + matches.map(\.displayName).joined(separator: ", "))
        }
        return match
    }

    /// The filesystem to work on: the selected one, or the default.
    public func fileSystem(selector: String?) throws -> any FileSystem {
        let volume = try selector.map { try self.volume(matching: $0) } ?? defaultVolume()
        guard let fs = volume.fileSystem else {
            throw WispError.unsupported(path, "\(volume.displayName): " + (volume.problem ?? "no filesystem Wisp can read"))
        }
        return fs
    }
}
