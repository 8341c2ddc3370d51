import FileSystems
import WispCore

/// What the boot loader scanners share: the guest's files (through the inspector), the facts
/// more than one loader reads, found once before any scanner runs, and the warnings and
/// parse errors they report.
struct BootScanContext {
    let inspector: GuestInspector
    var warnings: [String] = []
    /// Configurations that could not be read; the first is thrown when no entry is found.
    var parseErrors: [WispError] = []
    /// grubenv: GRUB's saved_entry, and the variables ($kernelopts) BLS options name even
    /// without GRUB.
    var grubenv: [String: String] = [:]
    /// The first loader/entries directory holding entries, read by GRUB's blscfg and by
    /// systemd-boot alike.
    var bls = BLSLocation()
    /// What GrubScanner found: it decides how the BLS entries are listed and whether they
    /// name the default.
    var grubMenu: GrubScanner.MenuFinding = .none
    /// On a live or installer CD: the El Torito EFI image's filesystem, whose GRUB
    /// configuration and loader entries name files on the medium (nil elsewhere).
    var elToritoEFI: (any FileSystem)?

    /// How a file of the El Torito EFI image is named in messages and reports.
    static func elToritoEFIPath(_ path: String) -> String { "[El Torito EFI image]" + path }

    /// A configuration file inside the El Torito EFI image, the first of `paths` there
    /// (FAT names are matched as stored, so spellings are tried in turn).
    func readElToritoEFI(_ paths: [String]) -> (path: String, bytes: [UInt8])? {
        guard let fs = elToritoEFI else { return nil }
        for path in paths {
            if let bytes = try? fs.readFile(path, limit: GuestInspector.configLimit) { return (path, bytes) }
        }
        return nil
    }

    init(inspector: GuestInspector) { self.inspector = inspector }

    var view: MountView? { inspector.view }

    func read(_ path: String) -> [UInt8]? {
        try? view?.readFile(path, limit: GuestInspector.configLimit)
    }

    func readText(_ path: String) -> String? {
        read(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Readable filesystems the guest does not mount (a /boot missing from fstab, an ESP).
    var unmountedFileSystems: [(index: Int, fs: any FileSystem)] {
        inspector.fileSystems.enumerated().compactMap { i, o in
            guard o.mountPoint == nil, let fs = o.fileSystem else { return nil }
            return (i, fs)
        }
    }

    /// GRUB notation for a path on a filesystem: its guest path if mounted, else (hd0,gptN)/path.
    func pathOn(fileSystem index: Int, _ path: String) -> String {
        if let guest = view?.guestPath(onFileSystem: index, path: path) { return guest }
        let opened = inspector.fileSystems[index]
        let scheme = inspector.partitionScheme == .gpt ? "gpt" : inspector.partitionScheme == .mbr ? "msdos" : ""
        if opened.partition.number == 0 { return MountView.normalize(path) }
        return "(hd0,\(scheme)\(opened.partition.number))" + MountView.normalize(path)
    }

    func exists(_ path: String) -> Bool {
        (try? inspector.locateGuestFile(path)) != nil
    }

    /// Rejects paths whose ".." climbs above the filesystem root: a boot loader cannot
    /// leave its partition.
    func checkInside(_ path: String, config: String, what: String) throws {
        var depth = 0
        for c in path.split(separator: "/") {
            if c == ".." { depth -= 1 } else if c != "." { depth += 1 }
            if depth < 0 {
                throw WispError.corrupt(inspector.disk.name, config, "\(what) path \"\(path)\" climbs out of the filesystem root")
            }
        }
    }

    /// Where a boot path lands: on the filesystem the loader reads (if known), else as a
    /// guest path, else under /boot (a separate /boot partition seen from the root).
    func locate(_ path: String, fileSystem index: Int?) -> String {
        var candidates: [String] = []
        if let index { candidates.append(pathOn(fileSystem: index, path)) }
        candidates.append(MountView.normalize(path))
        candidates.append(MountView.normalize("/boot/" + path))
        return candidates.first(where: exists) ?? candidates[0]
    }

    func listDirectory(_ path: String) throws -> [String] {
        let (fs, inode) = try inspector.locateGuestFile(path)
        let list = try fs.list(directory: inode)
        guard list.count <= 4096 else {
            throw WispError.corrupt(inspector.disk.name, path, "\(list.count) directory entries: too many to scan")
        }
        return list.map(\.name)
    }
}
