import FileSystems
import Partitions
import WispCore

/// Reads a guest disk the way its boot loader and init would: on the partitions and
/// filesystems `GuestDisk` opened, the OS root and its fstab assembled into a `MountView`
/// (the guest's tree, which `GuestFileSystem` presents as one filesystem), then every boot
/// entry it can find and the one that boots by default. Nothing is written.
public final class GuestInspector: @unchecked Sendable {
    public let guestDisk: GuestDisk
    public var disk: any BlockDevice { guestDisk.device }
    public let partitionScheme: PartitionScheme
    public let partitions: [Partition]
    /// Every recognised filesystem, readable or not, in partition order.
    public private(set) var fileSystems: [OpenedFileSystem] = []
    public private(set) var rootIndex: Int?
    public private(set) var fstab: [FstabEntry] = []
    public private(set) var view: MountView?
    public private(set) var osRelease: OSRelease?
    /// The image is a live or installer ISO read as its medium (no OS root on it).
    public private(set) var isLiveMedium = false
    var warnings: [String] = []
    /// Mount points whose filesystem Wisp cannot read, with the reason.
    var unreadableMounts: [String: String] = [:]
    private var cachedReport: GuestReport?

    public struct OpenedFileSystem: @unchecked Sendable {
        public var partition: Partition
        public var kind: FileSystemKind
        public var fileSystem: (any FileSystem)?
        public var unreadable: String?
        public var mountPoint: String?
    }

    /// Limits for reading guest configuration files: boot configs are small.
    static let configLimit: UInt64 = 4 << 20
    static let maxEntriesPerDirectory = 512

    public convenience init(disk: any BlockDevice) throws {
        try self.init(guestDisk: try GuestDisk(device: disk))
    }

    public convenience init(guestDisk: GuestDisk) throws {
        try self.init(guestDisk: guestDisk, root: guestDisk.findOSRoot())
    }

    /// `root` is `guestDisk.findOSRoot()`, for callers that already asked.
    init(guestDisk: GuestDisk, root: GuestDisk.OSRoot?) throws {
        self.guestDisk = guestDisk
        partitionScheme = guestDisk.table.scheme
        partitions = guestDisk.table.partitions
        warnings = guestDisk.table.warnings
        fileSystems = guestDisk.volumes.compactMap { volume in
            volume.kind.map {
                OpenedFileSystem(partition: volume.partition, kind: $0, fileSystem: volume.fileSystem,
                                 unreadable: volume.unreadable, mountPoint: nil)
            }
        }
        try assembleMountView(root: root)
    }

    // MARK: the mount view

    private func assembleMountView(root: GuestDisk.OSRoot?) throws {
        let rootVolume = root.map { guestDisk.volumes[$0.volumeIndex] }
        if root == nil, let medium = guestDisk.mediumVolume, let fs = medium.fileSystem,
           let index = fileSystems.firstIndex(where: { $0.partition.number == medium.partition.number && $0.kind == .iso9660 }) {
            // A live or installer ISO has no OS root of its own (the system lives in a
            // squashfs or an initramfs): its boot loader files are read from the medium,
            // which stands at "/" as isolinux and GRUB see it.
            isLiveMedium = true
            fileSystems[index].mountPoint = "/"
            view = try MountView(mounts: [MountView.Mount(mountPoint: "/", fileSystem: fs, fileSystemIndex: index,
                                                          sourcePath: "/", sourceInode: fs.rootInode)])
            return
        }
        guard let rootVolume, let root, let rootFS = rootVolume.fileSystem,
              let rootIndex = fileSystems.firstIndex(where: { $0.partition.number == rootVolume.partition.number }) else {
            let unreadable = fileSystems.filter { $0.unreadable != nil }
            if !unreadable.isEmpty {
                let list = unreadable.map { "partition \($0.partition.number) is \($0.kind.rawValue) (\($0.unreadable ?? ""))" }
                throw WispError.unsupported(disk.name, "no readable OS root filesystem: " + list.joined(separator: "; "))
            }
            // Say what the other partitions hold when Wisp knows the format but not how to
            // read through it (LVM, LUKS).
            var containers: [String] = []
            for partition in partitions where partition.size >= 1024 {
                guard let device = try? partition.device(on: disk) else { continue }
                if let label = try? device.read(at: 512, count: 32), Array(label[0..<8]) == Array("LABELONE".utf8),
                   Array(label[24..<32]) == Array("LVM2 001".utf8) {
                    containers.append("partition \(partition.number) is an LVM physical volume (LVM is not supported)")
                } else if let head = try? device.read(at: 0, count: 6), head == Array("LUKS".utf8) + [0xba, 0xbe] {
                    containers.append("partition \(partition.number) is LUKS-encrypted (not supported)")
                }
            }
            if containers.isEmpty, let failure = guestDisk.osRootFailure() { throw failure }
            let detail = containers.isEmpty ? "" : ": " + containers.joined(separator: "; ")
            throw WispError.notFound("\(disk.name): no filesystem holds an OS root (/etc/os-release)\(detail)")
        }
        self.rootIndex = rootIndex
        fileSystems[rootIndex].mountPoint = "/"
        let rootSource = root.sourcePath
        var mounts = [MountView.Mount(mountPoint: "/", fileSystem: rootFS, fileSystemIndex: rootIndex, sourcePath: rootSource,
                                      sourceInode: try MountView.sourceInode(of: rootSource, in: rootFS))]
        let rootOnly = try MountView(mounts: mounts)
        if let text = (try? rootOnly.readFile("/etc/os-release", limit: Self.configLimit))
            ?? (try? rootOnly.readFile("/usr/lib/os-release", limit: Self.configLimit)) {
            osRelease = OSRelease(parsing: String(decoding: text, as: UTF8.self))
        }
        if let text = try? rootOnly.readFile("/etc/fstab", limit: Self.configLimit) {
            do {
                fstab = try FstabEntry.parse(String(decoding: text, as: UTF8.self), source: "/etc/fstab")
            } catch let error as WispError {
                warnings.append(error.message)
            }
        }
        let skipTypes: Set<String> = ["swap", "proc", "sysfs", "tmpfs", "devpts", "none", "nfs", "nfs4", "cifs", "devtmpfs"]
        for entry in fstab where entry.mountPoint.hasPrefix("/") && entry.mountPoint != "/" && !skipTypes.contains(entry.type) {
            guard let index = fileSystemIndex(forDevice: entry.device) else {
                // An unreadable filesystem has no UUID or label to match: it may be this one.
                let unreadable = fileSystems.filter { $0.unreadable != nil && $0.kind != .swap }
                if !unreadable.isEmpty {
                    let list = unreadable.map { "\($0.kind.rawValue) on partition \($0.partition.number) (\($0.unreadable ?? ""))" }
                    unreadableMounts[MountView.normalize(entry.mountPoint)] =
                        "\(entry.mountPoint) (\(entry.device)) is probably " + list.joined(separator: " or ")
                }
                if !entry.options.split(separator: ",").contains("nofail") {
                    warnings.append("fstab line \(entry.line): \(entry.device) for \(entry.mountPoint) matches no filesystem on this disk")
                }
                continue
            }
            // A btrfs subvol=/subvolid= mount opens that subvolume as the kernel does
            // (subvolid= has no directory to follow; subvol= paths start at the top level
            // even when a default subvolume is set). A subvol= naming a plain directory (as
            // in images built offline, where btrfs-progs cannot make subvolumes) falls back
            // to following the directory below.
            if let btrfs = fileSystems[index].fileSystem as? BtrfsReader, Self.selectsSubvolume(entry.options),
               case let (reader, source)? = Self.openedSubvolume(of: btrfs, entry: entry, warnings: &warnings) {
                guard index != rootIndex || source != "/" else { continue }
                fileSystems[index].mountPoint = fileSystems[index].mountPoint ?? entry.mountPoint
                mounts.append(MountView.Mount(mountPoint: entry.mountPoint, fileSystem: reader, fileSystemIndex: index,
                                              sourcePath: source, sourceInode: reader.rootInode))
            } else if let fs = fileSystems[index].fileSystem {
                // An unopenable subvolid= was warned about above.
                if fs is BtrfsReader, case .id = BtrfsSubvolumeSelector.options(entry.options) { continue }
                // subvol= names the directory of the filesystem mounted there (btrfs
                // subvolumes: /home, /var, Fedora 44's /boot); without it, the top level.
                let source = entry.subvolume.map { "/" + $0 } ?? "/"
                guard index != rootIndex || source != "/" else { continue }
                guard let inode = try? MountView.sourceInode(of: source, in: fs) else {
                    warnings.append("fstab line \(entry.line): \(entry.mountPoint): subvolume \(source) not found on partition \(fileSystems[index].partition.number)")
                    continue
                }
                fileSystems[index].mountPoint = fileSystems[index].mountPoint ?? entry.mountPoint
                mounts.append(MountView.Mount(mountPoint: entry.mountPoint, fileSystem: fs, fileSystemIndex: index,
                                              sourcePath: source, sourceInode: inode))
            } else {
                fileSystems[index].mountPoint = entry.mountPoint
                unreadableMounts[MountView.normalize(entry.mountPoint)] =
                    "\(entry.mountPoint) is \(fileSystems[index].kind.rawValue) on partition \(fileSystems[index].partition.number) (\(fileSystems[index].unreadable ?? "unreadable"))"
            }
        }
        view = try MountView(mounts: mounts)
    }

    /// An error as a report field: its whole sentence (which names the device it is about).
    static func reason(_ error: WispError) -> String { error.message }

    /// The filesystem an fstab device field names (see `DeviceSpec`).
    func fileSystemIndex(forDevice field: String) -> Int? {
        guard let spec = DeviceSpec(fstab: field) else { return nil }
        return fileSystemIndex(for: spec)
    }

    /// The first recognised filesystem `spec` names, as an index into `fileSystems`.
    func fileSystemIndex(for spec: DeviceSpec) -> Int? {
        guard let volume = guestDisk.volumes.first(where: { $0.kind != nil && spec.matches($0) }) else { return nil }
        return fileSystems.firstIndex { $0.partition.number == volume.partition.number }
    }

    /// The filesystem GRUB's `$root` names.
    func fileSystemIndex(for device: GrubDevice) -> Int? {
        if let spec = DeviceSpec(grub: device) { return fileSystemIndex(for: spec) }
        if case .file(let path) = device {
            return fileSystems.firstIndex { (try? $0.fileSystem?.resolve(path)) != nil }
        }
        return nil
    }

    // MARK: reading guest files

    /// Reads a guest file: a guest path in the mount view, or "(hd0,gptN)/path" /
    /// "(hd0,N)/path" for a partition the guest does not mount.
    public func readGuestFile(_ path: String, limit: UInt64) throws -> [UInt8] {
        let (fs, location) = try locateGuestFile(path)
        let info = try fs.stat(inode: location)
        guard info.type == .regular else {
            throw WispError.invalidArgument("\(disk.name): \(path) is not a regular file in the guest (\(info.type.rawValue))")
        }
        guard info.size <= limit else {
            throw WispError.invalidArgument("\(disk.name): \(path) is \(info.size) bytes, more than the \(limit)-byte limit")
        }
        return try fs.read(inode: location, offset: 0, count: Int(info.size))
    }

    /// Reads `count` bytes at `offset` of a guest file (fewer at its end).
    public func readGuestFile(_ path: String, offset: UInt64, count: Int) throws -> [UInt8] {
        let (fs, inode) = try locateGuestFile(path)
        return try fs.read(inode: inode, offset: offset, count: count)
    }

    public func guestFileSize(_ path: String) throws -> UInt64 {
        let (fs, inode) = try locateGuestFile(path)
        return try fs.stat(inode: inode).size
    }

    func locateGuestFile(_ path: String) throws -> (any FileSystem, UInt64) {
        if path.hasPrefix("("), let close = path.firstIndex(of: ")") {
            let device = GrubMenu.device(from: String(path[path.startIndex...close]))
            guard let index = fileSystemIndex(for: device) else {
                throw WispError.notFound("\(disk.name): \(path): no such partition on this disk")
            }
            guard let fs = fileSystems[index].fileSystem else {
                throw WispError.unsupported(disk.name, "\(path): partition \(fileSystems[index].partition.number) is \(fileSystems[index].kind.rawValue) (\(fileSystems[index].unreadable ?? "unreadable"))")
            }
            return (fs, try fs.resolve(String(path[path.index(after: close)...])).inode)
        }
        guard let view else { throw WispError.notFound("\(disk.name): no guest root") }
        do {
            let location = try view.resolve(path)
            return (location.mount.fileSystem, location.inode)
        } catch let error as WispError where error.kind == .notFound {
            throw unreadableMountError(for: path) ?? WispError.notFound("\(disk.name): \(error.message)")
        }
    }

    /// When a path lies under a mount Wisp cannot read, the error names the missing reader.
    func unreadableMountError(for path: String) -> WispError? {
        let normalized = MountView.normalize(path)
        for (point, reason) in unreadableMounts where normalized == point || normalized.hasPrefix(point + "/") {
            return WispError.unsupported(disk.name, "\(path) lies on \(reason)")
        }
        return nil
    }

    // MARK: the report

    public func inspect() throws -> GuestReport {
        if let cachedReport { return cachedReport }
        var planner = BootEntryFinder(inspector: self)
        let found = try planner.findEntries()
        var kernelFacts: KernelFacts?
        var entries = found.entries
        var extraWarnings: [String] = []
        if let d = found.defaultIndex {
            do {
                kernelFacts = try facts(for: entries[d])
            } catch {
                extraWarnings.append("default kernel \(entries[d].kernel): \(error)")
            }
        }
        // Entries without a command line get the fallback (console by architecture).
        let architecture = kernelFacts?.guestArchitecture ?? initArchitecture()
        for i in entries.indices where entries[i].commandLine.trimmingWhitespace().isEmpty {
            entries[i].commandLine = fallbackCommandLine(architecture: architecture == .aarch64 ? "arm64" : "x86_64")
            entries[i].commandLineIsFallback = true
        }
        let report = GuestReport(
            image: disk.name, partitionScheme: partitionScheme,
            partitions: partitions.map(PartitionInfo.init),
            filesystems: guestDisk.volumes.compactMap { volume in
                volume.info(mountPoint: fileSystems.first { $0.partition.number == volume.partition.number }?.mountPoint)
            },
            rootPartition: rootIndex.map { fileSystems[$0].partition.number },
            osRelease: osRelease, fstab: fstab, bootEntries: entries, defaultEntry: found.defaultIndex,
            defaultReason: found.reason, kernel: kernelFacts, architecture: architecture,
            warnings: warnings + found.warnings + extraWarnings)
        cachedReport = report
        return report
    }

    /// The plan for the default entry, or for `entry` (an index from `inspect()`'s list, an
    /// entry id, or a title).
    public func bootPlan(entry: String? = nil) throws -> BootPlan {
        let report = try inspect()
        let index: Int
        if let entry {
            if let n = Int(entry), n >= 0, n < report.bootEntries.count {
                index = n
            } else if let n = report.bootEntries.firstIndex(where: { $0.id == entry })
                        ?? report.bootEntries.firstIndex(where: { $0.title == entry }) {
                index = n
            } else {
                let known = report.bootEntries.enumerated().map { "\($0.offset): \($0.element.id)" }.joined(separator: ", ")
                throw WispError.notFound("\(disk.name): no boot entry \"\(entry)\" (entries: \(known.isEmpty ? "none" : known))")
            }
        } else {
            guard let d = report.defaultEntry else {
                throw WispError.notFound("\(disk.name): no bootable kernel found: \(report.defaultReason)")
            }
            index = d
        }
        let e = report.bootEntries[index]
        return BootPlan(source: e.source, title: e.title, version: e.version, kernelPath: e.kernel,
                        initrdPaths: e.initrds, commandLine: e.commandLine,
                        unifiedKernelImage: e.isUnifiedKernelImage ? true : nil, entryID: e.id,
                        architecture: report.architecture)
    }

    /// root=UUID of the root filesystem, ro, rootflags from fstab (btrfs subvol=), and the
    /// serial console of the architecture: what a cloud image's own entry would say.
    public func fallbackCommandLine(architecture: String) -> String {
        var parts: [String] = []
        // A live medium's entries name their own root (boot=live, root=live:...): none to add.
        if isLiveMedium { return architecture == "arm64" ? "console=ttyAMA0" : "console=ttyS0" }
        if let rootIndex, let uuid = fileSystems[rootIndex].fileSystem?.uuid {
            parts.append("root=UUID=\(uuid)")
        } else if let rootIndex {
            parts.append("root=PARTUUID=\(fileSystems[rootIndex].partition.uniqueGUID ?? "")")
        }
        parts.append("ro")
        if let root = fstab.first(where: { $0.mountPoint == "/" }) {
            let flags = root.options.split(separator: ",").filter { $0.hasPrefix("subvol=") || $0.hasPrefix("subvolid=") }
            if !flags.isEmpty { parts.append("rootflags=" + flags.joined(separator: ",")) }
            if root.type != "auto" && !root.type.isEmpty { parts.append("rootfstype=\(root.type)") }
        }
        parts.append(architecture == "arm64" ? "console=ttyAMA0" : "console=ttyS0")
        return parts.joined(separator: " ")
    }

    /// The architecture of the guest's own programs: the ELF header of its init (systemd's
    /// or another), for images whose kernel cannot be read or is not there (containers).
    public func initArchitecture() -> GuestArchitecture? {
        for path in ["/sbin/init", "/usr/lib/systemd/systemd", "/lib/systemd/systemd", "/usr/sbin/init", "/bin/sh"] {
            guard let head = try? readGuestFile(path, offset: 0, count: ELFHeader.headLength),
                  let header = try? ELFHeader(head, source: path) else { continue }
            if let architecture = header.architecture { return architecture }
        }
        return nil
    }

    /// Reads just enough of an entry's kernel to describe it.
    public func facts(for entry: BootEntry) throws -> KernelFacts {
        if entry.isUnifiedKernelImage {
            let uki = try UnifiedKernelImage.open(inspector: self, path: entry.kernel)
            var facts = try KernelImage.facts(try uki.sectionBytes(".linux", inspector: self, limit: 256 << 20), source: entry.kernel)
            facts.note = "from the .linux section of unified kernel image \(entry.kernel)"
            return facts
        }
        let size = try guestFileSize(entry.kernel)
        let head = try readGuestFile(entry.kernel, offset: 0, count: Int(min(size, UInt64(KernelImage.headLength))))
        if !KernelImage.needsWholeFile(head: head) { return try KernelImage.facts(head, source: entry.kernel) }
        return try KernelImage.facts(readGuestFile(entry.kernel, limit: 256 << 20), source: entry.kernel)
    }
}
