import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// The real Debian test image (compressed qcow2) through the whole image layer.
@Suite struct TestImageTests {
    @Test func readsConvertsAndOverlaysTheRealImage() throws {
        let image = try TestImage.path()
        let dir = try TemporaryDirectory()
        // Wisp's raw expansion equals qemu-img's.
        let raw = dir.file("debian.raw")
        try ImageConverter.convert(input: try DiskImageFile.open(image), to: raw, options: ConvertOptions(format: .raw))
        try Qemu.compare(image, raw)
        // Recompressing with zstd gives an image qemu-img accepts and finds identical.
        let zstd = dir.file("debian-zstd.qcow2")
        try ImageConverter.convert(input: try DiskImageFile.open(raw), to: zstd,
                                   options: ConvertOptions(format: .qcow2, compression: .zstd))
        try Qemu.check(zstd)
        try Qemu.compare(raw, zstd)
        unlink(raw)
        // An overlay as `wisp run` makes it: written by Wisp, then by QEMU, still consistent.
        let overlay = dir.file("overlay.qcow2")
        try Qcow2Image.create(path: overlay, virtualSize: 6 << 30, backingFile: image, backingFormat: .qcow2,
                              backingPolicy: .selfContained)
        // The base lives elsewhere: the overlay may refer to it once its directory is allowed.
        let policy = ExternalReferencePolicy.confined(allowedDirectories: [(image as NSString).deletingLastPathComponent])
        #expect(throws: WispError.self) { _ = try Qcow2Image(path: overlay) }
        do {
            let q = try Qcow2Image(path: overlay, writable: true, policy: policy)
            try q.write([UInt8](repeating: 0x5A, count: 70_000), at: (128 << 20) + 1000)
            try q.write([UInt8](repeating: 0xA5, count: 4096), at: 5 << 30)
        }
        try Qemu.io(overlay, "write -P 0x11 4M 1M")
        try Qemu.check(overlay)
        let info = try ImageInfo.read(path: overlay, policy: policy)
        #expect(info.backingChain?.first?.filename == image)
        #expect(info.virtualSize == 6 << 30)
        let check = try Qcow2Checker.check(path: image)
        #expect(check.isClean, "\(check.text)")
    }
}
