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
        var best: (root: OSRoot, score: Int)?
        for (index, volume) in volumes.enumerated() {
            guard let fs = volume.fileSystem else { continue }
            var bases = ["/"]
            if Self.rootScore(fs, "/") < 2 { bases += ["/root", "/@", "/@root", "/@rootfs"] }
            for base in bases {
                let score = Self.rootScore(fs, base)
                if score >= 2, score > (best?.score ?? 0) {
                    best = (OSRoot(volumeIndex: index, sourcePath: base), score)
                    break
                }
            }
        }
        return best?.root
    }

    /// 2 for an os-release, 1 more for an fstab, 1 more for an init.
    static func rootScore(_ fs: any FileSystem, _ base: String) -> Int {
        var score = 0
        let p = base == "/" ? "" : base
        if (try? fs.resolve(p + "/etc/os-release")) != nil || (try? fs.resolve(p + "/usr/lib/os-release")) != nil { score += 2 }
        if (try? fs.resolve(p + "/etc/fstab")) != nil { score += 1 }
        if (try? fs.resolve(p + "/sbin/init", followFinalSymlink: false)) != nil
            || (try? fs.resolve(p + "/usr/lib/systemd/systemd")) != nil { score += 1 }
        return score
    }
}
