import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// Differencing VHD and VHDX images read as a backing chain, judged by `qemu-img compare`
/// against a qcow2 overlay with the same writes on the same parent; every parent name goes
/// through the chain's ExternalReferencePolicy; hostile locators are refused in a sentence.
@Suite struct DifferencingTests {
    typealias F = DifferencingFixture

    /// Wisp reads `image` (through its chain) to raw; qemu-img compares it with `reference`.
    static func expectSameAs(_ reference: String, _ image: String, in dir: TemporaryDirectory,
                             policy: ExternalReferencePolicy = .confinedToImageDirectory) throws {
        let out = dir.file("wisp-\(UUID().uuidString).raw")
        try ImageConverter.convert(input: try DiskImageFile.open(image, policy: policy), to: out, options: ConvertOptions(format: .raw))
        try Qemu.imgArgs(["compare", "-f", "raw", "-F", "qcow2", out, reference])
        unlink(out)
    }

    static func vhdParent(_ dir: TemporaryDirectory, _ name: String = "parent.vhd") throws -> String {
        let parent = dir.file(name)
        try Qemu.img("create", "-q", "-f", "vpc", "-o", "subformat=dynamic", parent, "40M")
        try Qemu.io(parent, format: "vpc", F.commands(F.parentWrites))
        return parent
    }

    @Test func vhdRelativeLocator() throws {
        let dir = try TemporaryDirectory()
        let parent = try Self.vhdParent(dir)
        let child = dir.file("child.vhd")
        try F.vhdChild(at: child, parentFile: parent, parentName: "parent.vhd",
                       locators: [("W2ku", F.utf16("C:\\VMs\\parent.vhd", bigEndian: false)),
                                  ("W2ru", F.utf16(".\\parent.vhd", bigEndian: false))])
        try F.reference(parent: parent, parentFormat: "vpc", writes: F.childWrites, at: dir.file("ref.qcow2"))
        try Self.expectSameAs(dir.file("ref.qcow2"), child, in: dir)
        let chain = try BackingChain.resolve(path: child, policy: .confinedToImageDirectory)
        #expect(chain.members.map(\.format) == [.vhd, .vhd])
        #expect(chain.top.parentLocator?.key == "W2ru")
        let info = try ImageInfo.read(path: child)
        #expect(info.formatSpecific?.data.subformat == "differencing")
        #expect(info.backingFile == ".\\parent.vhd" && info.backingChain?.first?.realPath == chain.members[1].path)
    }

    /// MacX (a file:// URL of an absolute path) when no relative locator is usable; a
    /// Windows absolute path (drive letter) names nothing on this machine and is passed over.
    @Test func vhdAbsoluteLocatorInASubdirectory() throws {
        let dir = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.file("base"), withIntermediateDirectories: false)
        let parent = try Self.vhdParent(dir, "base/parent.vhd")
        let child = dir.file("child.vhd")
        try F.vhdChild(at: child, parentFile: parent, parentName: "parent.vhd",
                       locators: [("W2ku", F.utf16("C:\\base\\parent.vhd", bigEndian: false)),
                                  ("MacX", Array("file://localhost\(parent)".utf8))])
        try F.reference(parent: parent, parentFormat: "vpc", writes: F.childWrites, at: dir.file("ref.qcow2"))
        try Self.expectSameAs(dir.file("ref.qcow2"), child, in: dir)
    }

    @Test func vhdParentOutsideTheDirectoryIsRefusedUnlessAllowed() throws {
        let dir = try TemporaryDirectory()
        for d in ["images", "elsewhere"] { try FileManager.default.createDirectory(atPath: dir.file(d), withIntermediateDirectories: false) }
        let parent = try Self.vhdParent(dir, "elsewhere/parent.vhd")
        let child = dir.file("images/child.vhd")
        try F.vhdChild(at: child, parentFile: parent, parentName: "parent.vhd",
                       locators: [("W2ru", F.utf16("..\\elsewhere\\parent.vhd", bigEndian: false))])
        let error = try #require(throws: WispError.self) { _ = try DiskImageFile.open(child) }
        #expect(error.kind == .permissionDenied && error.message.contains("VHD parent locator W2ru") && error.message.contains("--allow-backing"), "\(error.message)")
        let selfContained = try #require(throws: WispError.self) { _ = try DiskImageFile.open(child, policy: .selfContained) }
        #expect(selfContained.kind == .permissionDenied && selfContained.message.contains("must be self-contained"), "\(selfContained.message)")
        try F.reference(parent: parent, parentFormat: "vpc", writes: F.childWrites, at: dir.file("ref.qcow2"))
        try Self.expectSameAs(dir.file("ref.qcow2"), child, in: dir, policy: .confined(allowedDirectories: [dir.file("elsewhere")]))
    }

    @Test func vhdxDifferencing() throws {
        let dir = try TemporaryDirectory()
        let parent = dir.file("parent.vhdx")
        try Qemu.img("create", "-q", "-f", "vhdx", "-o", "subformat=dynamic,block_size=1M", parent, "40M")
        try Qemu.io(parent, format: "vhdx", F.commands(F.parentWrites))
        let child = dir.file("child.vhdx")
        try F.vhdxChild(at: child, entries: [("parent_linkage", F.guidText(try F.vhdxDataWriteGUID(parent))),
                                             ("relative_path", ".\\parent.vhdx"),
                                             ("absolute_win32_path", "C:\\VMs\\parent.vhdx")])
        try F.reference(parent: parent, parentFormat: "vhdx", writes: F.childWrites, at: dir.file("ref.qcow2"))
        try Self.expectSameAs(dir.file("ref.qcow2"), child, in: dir)
        let info = try ImageInfo.read(path: child)
        #expect(info.formatSpecific?.data.subformat == "differencing")
        #expect(info.formatSpecific?.data.parentUUID == VhdxImage.guidString(try F.vhdxDataWriteGUID(parent)))
        #expect(info.backingChain?.count == 1)
    }

    @Test func vhdxParentLinkageMismatchIsRefused() throws {
        let dir = try TemporaryDirectory()
        let parent = dir.file("parent.vhdx")
        try Qemu.img("create", "-q", "-f", "vhdx", parent, "40M")
        let child = dir.file("child.vhdx")
        try F.vhdxChild(at: child, entries: [("parent_linkage", "{00000000-1111-2222-3333-444444444444}"), ("relative_path", "parent.vhdx")])
        let error = try #require(throws: WispError.self) { _ = try DiskImageFile.open(child) }
        #expect(error.kind == .corrupt && error.message.contains("parent id"), "\(error.message)")
    }

    // MARK: - Hostile seeds

    @Test func selfReferenceAndCyclesAreRefused() throws {
        let dir = try TemporaryDirectory()
        let me = dir.file("me.vhd")
        try F.vhdChild(at: me, parentFile: "", parentName: "me.vhd", locators: [("W2ru", F.utf16("me.vhd", bigEndian: false))],
                       parentID: [UInt8](repeating: 7, count: 16))
        let loop = try #require(throws: WispError.self) { _ = try DiskImageFile.open(me) }
        #expect(loop.kind == .corrupt && loop.message.contains("loops"), "\(loop.message)")
        let a = dir.file("a.vhd"), b = dir.file("b.vhd")
        try F.vhdChild(at: a, parentFile: "", parentName: "b.vhd", locators: [("W2ru", F.utf16("b.vhd", bigEndian: false))],
                       parentID: [UInt8](repeating: 1, count: 16))
        try F.vhdChild(at: b, parentFile: "", parentName: "a.vhd", locators: [("W2ru", F.utf16("a.vhd", bigEndian: false))],
                       parentID: [UInt8](repeating: 2, count: 16))
        let cycle = try #require(throws: WispError.self) { _ = try DiskImageFile.open(a) }
        // Either the id check or the loop check stops it; never a hang or a trap.
        #expect(cycle.kind == .corrupt, "\(cycle.message)")
        let x = dir.file("x.vhdx")
        try F.vhdxChild(at: x, entries: [("parent_linkage", "{00000000-0000-0000-0000-000000000000}"), ("relative_path", "x.vhdx")])
        let vx = try #require(throws: WispError.self) { _ = try DiskImageFile.open(x) }
        #expect(vx.kind == .corrupt && vx.message.contains("loops"), "\(vx.message)")
    }

    @Test func absurdLocatorsAreRefused() throws {
        let dir = try TemporaryDirectory()
        let parent = try Self.vhdParent(dir)
        let child = dir.file("child.vhd")
        try F.vhdChild(at: child, parentFile: parent, parentName: "parent.vhd",
                       locators: [("W2ru", F.utf16("parent.vhd", bigEndian: false))])
        var bytes = try F.read(child)
        // Locator 0's data length: 0x7FFFFFFF; then its offset: past the end of the file.
        let original = bytes
        bytes.putBE(0x7FFF_FFFF, at: 512 + 576 + 8, width: 4)
        bytes.putBE(0, at: 512 + 36, width: 4)
        bytes.putBE(UInt64(VhdFooter.checksum(Array(bytes[512..<1536]), skipping: 36)), at: 512 + 36, width: 4)
        try F.write(child, bytes)
        let long = try #require(throws: WispError.self) { _ = try DiskImageFile.open(child) }
        #expect(long.kind == .corrupt && long.message.contains("VHD parent locator 0 (W2ru)"), "\(long.message)")
        bytes = original
        bytes.putBE(UInt64.max - 10, at: 512 + 576 + 16, width: 8)
        bytes.putBE(0, at: 512 + 36, width: 4)
        bytes.putBE(UInt64(VhdFooter.checksum(Array(bytes[512..<1536]), skipping: 36)), at: 512 + 36, width: 4)
        try F.write(child, bytes)
        let past = try #require(throws: WispError.self) { _ = try DiskImageFile.open(child) }
        #expect(past.kind == .corrupt && past.message.contains("reach past the end"), "\(past.message)")
        // A VHDX locator whose entry points outside the item.
        let x = dir.file("bad.vhdx")
        try F.vhdxChild(at: x, entries: [("parent_linkage", "{00000000-0000-0000-0000-000000000000}"), ("relative_path", "parent.vhdx")])
        var xb = try F.read(x)
        // Find the locator by its type GUID and set the first entry's key offset to 60000.
        let guid = VhdxImage.vhdxLocatorTypeGUID
        let at = try #require((0..<(xb.count - 16)).first { Array(xb[$0..<($0 + 16)]) == guid })
        xb.putLE(60000, at: at + 20, width: 4)
        try F.write(x, xb)
        let vx = try #require(throws: WispError.self) { _ = try DiskImageFile.open(x) }
        #expect(vx.kind == .corrupt && vx.message.contains("VHDX parent locator"), "\(vx.message)")
    }

    /// VDI names its parent only by UUID: info reports it, opening refuses in a sentence.
    @Test func differencingVdiIsReportedAndRefused() throws {
        let dir = try TemporaryDirectory()
        let vdi = dir.file("child.vdi")
        try Qemu.img("create", "-q", "-f", "vdi", vdi, "8M")
        var b = try F.read(vdi)
        b.putLE(4, at: 76, width: 4)
        let parentUUID: [UInt8] = [0x78, 0x56, 0x34, 0x12, 0x34, 0x12, 0x78, 0x56, 1, 2, 3, 4, 5, 6, 7, 8]
        b.replaceSubrange(440..<456, with: parentUUID)
        try F.write(vdi, b)
        let info = try ImageInfo.read(path: vdi)
        #expect(info.formatSpecific?.data.parentUUID == "12345678-1234-5678-0102-030405060708")
        #expect(info.formatSpecific?.data.subformat == "differencing")
        let error = try #require(throws: WispError.self) { _ = try DiskImageFile.open(vdi) }
        #expect(error.kind == .unsupported && error.message.contains("12345678-1234-5678-0102-030405060708"), "\(error.message)")
    }
}
