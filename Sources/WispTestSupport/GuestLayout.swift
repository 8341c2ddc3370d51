import Foundation
import WispCore

/// Builds guest disks at test time from small trees with the real tools: mkfs.ext4 -d,
/// mkfs.vfat + mcopy, mkfs.btrfs --rootdir, mkfs.xfs -p, and sgdisk + dd to assemble a GPT
/// disk from the filesystem images. No loop devices, no mounts, no committed binaries.
public final class GuestLayout: @unchecked Sendable {
    public enum Node: Sendable {
        case file([UInt8])
        case text(String)
        case symlink(String)
        case directory
    }

    public struct Part: Sendable {
        public var number: Int
        public var image: String?  // nil: an empty partition (BIOS boot)
        public var sizeMiB: Int
        public var typeCode: String
        public var name: String
        public var guid: String

        public init(number: Int, image: String?, sizeMiB: Int, typeCode: String, name: String, guid: String) {
            self.number = number
            self.image = image
            self.sizeMiB = sizeMiB
            self.typeCode = typeCode
            self.name = name
            self.guid = guid
        }
    }

    public let dir: TemporaryDirectory
    private var counter = 0

    public init(_ label: String) throws {
        dir = try TemporaryDirectory("wisp-layout-\(label)")
    }

    /// Writes `tree` (guest path → node) under a fresh directory and returns it.
    public func materialize(_ tree: [String: Node]) throws -> String {
        counter += 1
        let root = dir.file("tree\(counter)")
        let fm = FileManager.default
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        for (path, node) in tree.sorted(by: { $0.key < $1.key }) {
            let full = root + path
            let parent = (full as NSString).deletingLastPathComponent
            try fm.createDirectory(atPath: parent, withIntermediateDirectories: true)
            switch node {
            case .file(let bytes): try Data(bytes).write(to: URL(fileURLWithPath: full))
            case .text(let s): try Data(s.utf8).write(to: URL(fileURLWithPath: full))
            case .symlink(let target): try fm.createSymbolicLink(atPath: full, withDestinationPath: target)
            case .directory: try fm.createDirectory(atPath: full, withIntermediateDirectories: true)
            }
        }
        return root
    }

    public func ext4(_ tree: [String: Node], uuid: String, label: String, sizeMiB: Int = 24) throws -> String {
        let root = try materialize(tree)
        counter += 1
        let image = dir.file("fs\(counter).ext4")
        try ToolRunner.check("mkfs.ext4", ["-q", "-F", "-d", root, "-U", uuid, "-L", label, image, "\(sizeMiB)M"])
        return image
    }

    public func vfat(_ tree: [String: Node], volumeID: String, label: String, sizeMiB: Int = 34) throws -> String {
        let root = try materialize(tree)
        counter += 1
        let image = dir.file("fs\(counter).vfat")
        try ToolRunner.check("truncate", ["-s", "\(sizeMiB)M", image])
        try ToolRunner.check("mkfs.vfat", ["-n", label, "-i", volumeID, image])
        let entries = try FileManager.default.contentsOfDirectory(atPath: root).map { root + "/" + $0 }
        if !entries.isEmpty {
            try ToolRunner.check("mcopy", ["-s", "-i", image] + entries + ["::/"])
        }
        return image
    }

    /// `subvolumes` (top-level directories of `tree`) become real subvolumes where
    /// mkfs.btrfs can make them offline (`--subvol`, btrfs-progs 6.4); older versions
    /// leave them directories, which fstab's `subvol=` reaches the same way.
    public func btrfs(_ tree: [String: Node], uuid: String, label: String, sizeMiB: Int = 128,
                      subvolumes: [String] = []) throws -> String {
        let root = try materialize(tree)
        counter += 1
        let image = dir.file("fs\(counter).btrfs")
        try ToolRunner.check("truncate", ["-s", "\(sizeMiB)M", image])
        let subvolumeArguments = try Self.mkfsBtrfsMakesSubvolumes() ? subvolumes.flatMap { ["--subvol", $0] } : []
        try ToolRunner.check("mkfs.btrfs", ["-q", "-f", "-U", uuid, "-L", label, "--rootdir", root] + subvolumeArguments + [image])
        return image
    }

    /// Whether the installed mkfs.btrfs has `--subvol`.
    public static func mkfsBtrfsMakesSubvolumes() throws -> Bool {
        let help = try ToolRunner.run("mkfs.btrfs", ["--help"])
        return (help.stdoutText + help.stderrText).contains("--subvol")
    }

    /// An XFS filesystem populated through mkfs.xfs's prototype file (-p), which names each
    /// directory, file (with the host file holding its bytes) and symlink.
    public func xfs(_ tree: [String: Node] = [:], uuid: String, label: String, sizeMiB: Int = 300) throws -> String {
        let root = try materialize(tree)
        counter += 1
        let image = dir.file("fs\(counter).xfs")
        var proto = "/dev/null\n0 0\nd--755 0 0\n"
        func walk(_ path: String, depth: Int) throws {
            let fm = FileManager.default
            for name in try fm.contentsOfDirectory(atPath: path).sorted() {
                let full = path + "/" + name
                let indent = String(repeating: " ", count: depth)
                let attributes = try fm.attributesOfItem(atPath: full)
                switch attributes[.type] as? FileAttributeType {
                case .typeSymbolicLink?:
                    proto += "\(indent)\(name) l--777 0 0 \(try fm.destinationOfSymbolicLink(atPath: full))\n"
                case .typeDirectory?:
                    proto += "\(indent)\(name) d--755 0 0\n"
                    try walk(full, depth: depth + 1)
                    proto += "\(indent)$\n"
                default:
                    proto += "\(indent)\(name) ---644 0 0 \(full)\n"
                }
            }
        }
        try walk(root, depth: 1)
        proto += "$\n"
        let protoPath = dir.file("proto\(counter)")
        try Data(proto.utf8).write(to: URL(fileURLWithPath: protoPath))
        try ToolRunner.check("truncate", ["-s", "\(sizeMiB)M", image])
        try ToolRunner.check("mkfs.xfs", ["-q", "-f", "-m", "uuid=\(uuid)", "-L", label, "-p", protoPath, image])
        return image
    }

    /// A GPT disk holding `parts` in the order given, 1 MiB aligned, filled with dd.
    public func gptDisk(_ parts: [Part]) throws -> String {
        counter += 1
        let disk = dir.file("disk\(counter).raw")
        let total = 2 + parts.reduce(0) { $0 + $1.sizeMiB }
        try ToolRunner.check("truncate", ["-s", "\(total)M", disk])
        var args = ["-o"]
        var startMiB = 1
        var placements: [(String, Int)] = []
        for p in parts {
            let first = startMiB * 2048, last = (startMiB + p.sizeMiB) * 2048 - 1
            args += ["-n", "\(p.number):\(first):\(last)", "-t", "\(p.number):\(p.typeCode)",
                     "-c", "\(p.number):\(p.name)", "-u", "\(p.number):\(p.guid)"]
            if let image = p.image { placements.append((image, startMiB)) }
            startMiB += p.sizeMiB
        }
        try ToolRunner.check("sgdisk", args + [disk])
        for (image, start) in placements {
            try ToolRunner.check("dd", ["if=\(image)", "of=\(disk)", "bs=1M", "seek=\(start)", "conv=notrunc,sparse", "status=none"])
        }
        return disk
    }

    public static func grubenv(_ vars: [String: String]) -> [UInt8] {
        var text = "# GRUB Environment Block\n"
        for (k, v) in vars.sorted(by: { $0.key < $1.key }) { text += "\(k)=\(v)\n" }
        var bytes = Array(text.utf8)
        bytes += [UInt8](repeating: UInt8(ascii: "#"), count: max(0, 1024 - bytes.count))
        return bytes
    }

    public static func osRelease(id: String, version: String, name: String) -> Node {
        .text("NAME=\"\(name)\"\nID=\(id)\nVERSION_ID=\"\(version)\"\nPRETTY_NAME=\"\(name) \(version)\"\n")
    }
}
