import Foundation
import WispCore

/// A GPT disk made by sgdisk with FAT filesystems made by mkfs.vfat and filled by mtools,
/// copied into their partitions: p1 an ESP, p2 a "root" holding /etc/os-release, p3 no
/// filesystem at all.
public struct GuestDiskFixture: Sendable {
    public let directory: TemporaryDirectory
    public let disk: String
    public let espTree: String
    public let rootTree: String

    public static let environment = ["LC_ALL": "C.UTF-8", "TZ": "UTC", "MTOOLS_SKIP_CHECK": "1"]

    public init(withRoot: Bool = true) throws {
        directory = try TemporaryDirectory("guestdisk")
        disk = directory.file("disk.img")
        espTree = directory.file("esp")
        rootTree = directory.file("root")
        try Self.write("\(espTree)/EFI/debian/grub.cfg", Array("search --fs-uuid\n".utf8), mtime: 1_700_000_000)
        try Self.write("\(espTree)/EFI/debian/shimx64.efi", (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }, mtime: 1_700_000_100)
        try Self.write("\(espTree)/EFI/BOOT/BOOTX64.EFI", Array("boot".utf8), mtime: 1_700_000_200)
        try Self.write("\(espTree)/empty.txt", [], mtime: 1_700_000_300)
        try Self.write("\(rootTree)/etc/os-release", Array("ID=debian\nVERSION_ID=\"12\"\n".utf8), mtime: 1_690_000_000)
        try Self.write("\(rootTree)/etc/hostname", Array("guest\n".utf8), mtime: 1_690_000_000)

        try ToolRunner.check("truncate", ["-s", "96M", disk])
        try ToolRunner.check("sgdisk", ["-n", "1:2048:+40M", "-t", "1:ef00", "-c", "1:EFI System",
                                        "-n", "2:0:+40M", "-t", "2:8300", "-c", "2:rootfs",
                                        "-n", "3:0:0", "-t", "3:8300", "-c", "3:scratch", disk])
        try fill(tree: espTree, label: "ESPLABEL", offset: 2048 * 512)
        if withRoot {
            try fill(tree: rootTree, label: "ROOTFS", offset: (2048 + 40 * 2048) * 512)
        }
    }

    public func fill(tree: String, label: String, offset: UInt64) throws {
        let fs = directory.file("\(label).img")
        try ToolRunner.check("mkfs.vfat", ["-C", "-F", "32", "-s", "1", "-S", "512", "-n", label, fs, "\(40 * 1024)"])
        let top = try FileManager.default.contentsOfDirectory(atPath: tree).sorted().map { "\(tree)/\($0)" }
        try ToolRunner.check("mcopy", ["-s", "-m", "-i", fs] + top + ["::/"], environment: Self.environment)
        try ToolRunner.check("dd", ["if=\(fs)", "of=\(disk)", "bs=512", "seek=\(offset / 512)", "conv=notrunc", "status=none"])
    }

    public static func write(_ path: String, _ bytes: [UInt8], mtime: TimeInterval) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw WispError(.io, "\(path): cannot write fixture")
        }
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: mtime)], ofItemAtPath: path)
    }

    /// blkid's view of the filesystem in partition `number` (LABEL, UUID, TYPE).
    public func blkid(partition number: Int, start: UInt64, size: UInt64) throws -> [String: String] {
        // blkid exits 2 when it finds nothing there.
        let result = try ToolRunner.run("blkid", ["-p", "-o", "export", "--offset", "\(start)", "--size", "\(size)", disk])
        guard result.status == 0 || result.status == 2 else { throw WispError(.failed, "blkid: \(result.stderrText)") }
        let text = result.stdoutText
        return Dictionary(text.split(separator: "\n").compactMap { line -> (String, String)? in
            let parts = line.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }, uniquingKeysWith: { a, _ in a })
    }
}
