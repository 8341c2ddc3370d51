import Foundation
import Testing
import FileSystems
import GuestInspect
import Partitions
import WispCore
import WispTestSupport

/// The real Debian test image (scripts/make-test-image): GPT with p1 ext4 root, p14 BIOS
/// boot, p15 ESP. Its identifiers are fixed by that script; mtools, reading the ESP that
/// qemu-img copies out, judges the FAT reader.
@Suite struct GuestDiskTestImageTests {
    @Test func partitionTableOfTheTestImage() throws {
        let disk = try GuestDisk(path: try TestImage.path())
        #expect(disk.table.scheme == .gpt)
        #expect(disk.table.warnings == [])
        #expect(disk.table.diskGUID == "6c6f6f6b-7769-7370-0000-000000000000")
        #expect(disk.table.partitions.map(\.number).sorted() == [1, 14, 15])
        let root = try #require(disk.table.partition(number: 1))
        let bios = try #require(disk.table.partition(number: 14))
        let esp = try #require(disk.table.partition(number: 15))
        #expect(root.uniqueGUID == "57495350-0001-4000-8000-0000000000a1")
        #expect(bios.uniqueGUID == "57495350-0001-4000-8000-0000000000ae")
        #expect(esp.uniqueGUID == "57495350-0001-4000-8000-0000000000af")
        #expect(bios.typeName == "BIOS boot")
        #expect(esp.typeName == "EFI System")
        #expect(esp.startOffset == 8192 * 512)
        #expect(esp.endOffset == 262_144 * 512)
        #expect(root.startOffset == 262_144 * 512)
        let volume = try disk.volume(selectedBy: DeviceSpec(selector: "5749-F00D"))
        #expect(volume.partition.number == 15)
        #expect(volume.kind == .vfat)
        #expect(try disk.volume(selectedBy: DeviceSpec(selector: "PARTUUID=57495350-0001-4000-8000-0000000000af")).partition.number == 15)
    }

    @Test func espOfTheTestImageMatchesMtools() throws {
        let image = try TestImage.path()
        let disk = try GuestDisk(path: image)
        let fs = try disk.fileSystem(selectedBy: DeviceSpec(selector: "15"))
        // Copy the ESP's bytes out with qemu-img and let mtools extract every file.
        let dir = try TemporaryDirectory("testimage-esp")
        let raw = dir.file("esp.raw")
        try ToolRunner.check("qemu-img", ["dd", "-f", "qcow2", "-O", "raw", "bs=512", "skip=8192",
                                          "count=\(262_144 - 8192)", "if=\(image)", "of=\(raw)"])
        let judged = dir.file("judged")
        try FileManager.default.createDirectory(atPath: judged, withIntermediateDirectories: true)
        try ToolRunner.check("mcopy", ["-s", "-n", "-i", raw, "::/", judged],
                             environment: ["LC_ALL": "C.UTF-8", "MTOOLS_SKIP_CHECK": "1"])
        var expected: [String: [UInt8]] = [:]
        let enumerator = FileManager.default.enumerator(atPath: judged)
        while let relative = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: "\(judged)/\(relative)", isDirectory: &isDirectory)
            expected["/" + relative] = isDirectory.boolValue ? nil : Array(try Data(contentsOf: URL(fileURLWithPath: "\(judged)/\(relative)")))
            if isDirectory.boolValue { expected["/" + relative + "/"] = [] }
        }
        var actual: [String: [UInt8]] = [:]
        func walk(_ inode: UInt64, _ prefix: String) throws {
            for entry in try fs.list(directory: inode) {
                let path = prefix + "/" + entry.name
                if entry.type == .directory {
                    actual[path + "/"] = []
                    try walk(entry.inode, path)
                } else {
                    actual[path] = try fs.readFile(path)
                }
            }
        }
        try walk(fs.rootInode, "")
        #expect(actual.keys.sorted() == expected.keys.sorted())
        for (path, bytes) in expected { #expect(actual[path] == bytes, "\(path)") }
        #expect(actual.keys.contains("/EFI/BOOT/BOOTX64.EFI"))
    }

    @Test func treeIsTheExt4RootWithTheESPMounted() throws {
        let disk = try GuestDisk(path: try TestImage.path())
        let root = try #require(disk.findOSRoot())
        #expect(disk.volumes[root.volumeIndex].partition.number == 1)
        #expect(disk.volumes[root.volumeIndex].kind == .ext4)
        let tree = try disk.guestTree()
        let osRelease = String(decoding: try tree.readFile("/etc/os-release"), as: UTF8.self)
        #expect(osRelease.contains("ID=debian"))
        // The ESP, mounted on /boot/efi by the image's fstab, is the same tree the raw
        // partition holds.
        let esp = try disk.fileSystem(selectedBy: .partitionNumber(15))
        #expect(try tree.readFile("/boot/efi/EFI/BOOT/BOOTX64.EFI") == (try esp.readFile("/EFI/BOOT/BOOTX64.EFI")))
    }
}
