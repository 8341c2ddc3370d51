import FileSystems
import WispCore

extension GuestDisk {
    /// The filesystem holding the operating system, and the directory of it that is the
    /// guest's "/" ("/" itself, or a btrfs subvolume's directory).
    public struct OSRoot: Sendable, Equatable {
        /// Index into `volumes`.
        public var volumeIndex: Int
        public var sourcePath: String

        public init(volumeIndex: Int, sourcePath: String) {
            self.volumeIndex = volumeIndex
            self.sourcePath = sourcePath
        }
    }

    /// The OS root: a readable filesystem holding os-release, preferring one with an fstab
    /// and an init. Btrfs images keep the OS in a subvolume ("root" on Fedora, "@" on Arch
    /// and Ubuntu): its directory is tried when the top level holds no OS. Nil when no
    /// filesystem holds one (a data disk, a seed image).
    public func findOSRoot() -> OSRoot? {
        searchOSRoot().root
    }

    /// The OS root, and the errors that stopped the search from looking where it wanted to:
    /// a corrupt table entry or an unreadable directory on the way to /etc/os-release.
    /// "Not found" is the search's ordinary answer and is not a problem.
    public func searchOSRoot() -> (root: OSRoot?, problems: [WispError]) {
        var best: (root: OSRoot, score: Int)?
        var problems: [WispError] = []
        for (index, volume) in volumes.enumerated() {
            guard let fs = volume.fileSystem else { continue }
            var bases = ["/"]
            if Self.rootScore(fs, "/", problems: &problems) < 2 { bases += ["/root", "/@", "/@root", "/@rootfs"] }
            for base in bases {
                let score = Self.rootScore(fs, base, problems: &problems)
                if score >= 2, score > (best?.score ?? 0) {
                    best = (OSRoot(volumeIndex: index, sourcePath: base), score)
                    break
                }
            }
        }
        return (best?.root, problems)
    }

    /// The error to report when no OS root was found: the first thing that went wrong on the
    /// way (its kind and cause kept, prefixed with what was being looked for), or nil when the
    /// search simply found nothing.
    public func osRootFailure() -> WispError? {
        let search = searchOSRoot()
        guard search.root == nil, let first = search.problems.first else { return nil }
        var error = first.prefixed("\(name): no OS root could be found, because looking for /etc/os-release failed")
        error.cause = first
        return error
    }

    /// 2 for an os-release, 1 more for an fstab, 1 more for an init.
    static func rootScore(_ fs: any FileSystem, _ base: String, problems: inout [WispError]) -> Int {
        let p = base == "/" ? "" : base
        func exists(_ path: String, followFinalSymlink: Bool = true) -> Bool {
            do {
                _ = try fs.resolve(path, followFinalSymlink: followFinalSymlink)
                return true
            } catch let error as WispError {
                if error.kind != .notFound && error.kind != .invalidArgument && problems.count < 8 {
                    problems.append(error)
                }
                return false
            } catch {
                return false
            }
        }
        var score = 0
        if exists(p + "/etc/os-release") || exists(p + "/usr/lib/os-release") { score += 2 }
        if exists(p + "/etc/fstab") { score += 1 }
        if exists(p + "/sbin/init", followFinalSymlink: false) || exists(p + "/usr/lib/systemd/systemd") { score += 1 }
        return score
    }
}
