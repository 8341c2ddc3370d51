import Foundation
import Testing
import FileSystems
import GuestInspect
import WispCore
import WispTestSupport
@testable import WispKit

/// `GuestListing` (wisp fs ls) on FAT filesystems made by mkfs.vfat and filled by mtools.
@Suite struct GuestListingTests {
    @Test func listingLooksLikeLs() throws {
        let fixture = try GuestDiskFixture()
        let fs = try GuestDisk(path: fixture.disk).fileSystem(selectedBy: .partitionNumber(1))
        let entries = try GuestListing.list(fs, path: "/EFI/debian", long: true)
        #expect(entries.map(\.name) == ["grub.cfg", "shimx64.efi"])
        let lines = GuestListing.longLines(entries)
        #expect(lines[0] == "-rwxr-xr-x 1 0 0     17 2023-11-14 22:13 grub.cfg")
        #expect(lines[1] == "-rwxr-xr-x 1 0 0 300000 2023-11-14 22:15 shimx64.efi")
        let file = try GuestListing.list(fs, path: "/EFI/BOOT/BOOTX64.EFI", long: false)
        #expect(file.map(\.name) == ["BOOTX64.EFI"])
        #expect(GuestListing.modeString(FileStat(inode: 1, type: .regular, permissions: 0o4755, size: 0)) == "-rwsr-xr-x")
        #expect(GuestListing.modeString(FileStat(inode: 1, type: .directory, permissions: 0o1777, size: 0)) == "drwxrwxrwt")
        #expect(GuestListing.modeString(FileStat(inode: 1, type: .symlink, permissions: 0o2644, size: 0)) == "lrw-r-Sr--")
    }


    /// Large directories are stat'ed in parallel; the result must equal the sequential one
    /// and be sorted by name, as mdir lists the same names.
    @Test func bigDirectoryListingIsCompleteAndSorted() throws {
        let dir = try TemporaryDirectory("biglist")
        let image = dir.file("fat.img"), tree = dir.file("many")
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        for i in 0..<200 {
            try GuestDiskFixture.write("\(tree)/file-\(i).dat", Array(repeating: UInt8(i & 0xFF), count: i), mtime: 1_700_000_000 + Double(i) * 2)
        }
        try ToolRunner.check("mkfs.vfat", ["-C", image, "4096"])
        try ToolRunner.check("mcopy", ["-s", "-m", "-i", image, tree, "::/"], environment: GuestDiskFixture.environment)
        let fs = try GuestDisk(path: image).guestTree()
        let long = try GuestListing.list(fs, path: "/many", long: true)
        let short = try GuestListing.list(fs, path: "/many", long: false)
        #expect(long.map(\.name) == short.map(\.name))
        #expect(long.map(\.name) == (0..<200).map { "file-\($0).dat" }.sorted())
        for entry in long {
            let i = try #require(Int(entry.name.dropFirst(5).dropLast(4)))
            #expect(entry.size == UInt64(i))
            #expect(entry.mtime == 1_700_000_000 + Int64(i) * 2)
        }
        let mdir = try ToolRunner.check("mdir", ["-b", "-i", image, "::/many"], environment: GuestDiskFixture.environment).stdoutText
        #expect(mdir.split(separator: "\n").count == 200)
    }
}

