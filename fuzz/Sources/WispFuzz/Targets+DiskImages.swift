import DiskImage
import WispCore

/// Image formats, read the way `wisp image info|check|convert` read them: through the
/// path-taking entry points (the chain resolver opens files by name), so the input is
/// written to a tmpfs scratch directory first. The first file is the image, the others
/// (after `FuzzInput.fileSeparator`) the files its header may name: backing images,
/// VMDK extents, a VHD parent.
extension FuzzTargets {
    static let diskImages: [FuzzTarget] = [
        imageFile("qcow2", "qcow2 header, extensions, L1/L2, refcounts, compressed clusters, backing chains",
                  names: ["image.qcow2", "backing-1.qcow2", "backing-2.qcow2"]),
        imageFile("vmdk", "VMDK descriptor, sparse extents (grain directories/tables), flat extents",
                  names: ["image.vmdk", "image-s001.vmdk", "image-flat.vmdk"]),
        imageFile("vhd", "VHD footer, dynamic header, BAT, differencing parent locators",
                  names: ["image.vhd", "parent.vhd"]),
        imageFile("vhdx", "VHDX headers, region table, metadata, BAT, parent locators",
                  names: ["image.vhdx", "parent.vhdx"]),
        imageFile("vdi", "VDI header and block map", names: ["image.vdi"]),
        imageFile("ova", "OVA tar, OVF descriptor, manifest digests, the disk inside", names: ["image.ova"]),
    ]

    static func imageFile(_ name: String, _ summary: String, names: [String]) -> FuzzTarget {
        FuzzTarget(name: name, summary: summary) { input in
            let parts = FuzzInput.files(input, limit: names.count)
            let dir = ScratchDirectory.populate(zip(names, parts).map { ($0, $1) })
            let path = "\(dir)/\(names[0])"
            attempt { _ = try ImageInfo.read(path: path) }
            attempt { _ = try ImageChecker.check(path: path) }
            attempt {
                let device = try DiskImageFile.open(path)
                try readSample(device)
                _ = try device.allocationMap(offset: 0, length: min(device.size, 256 << 20))
            }
        }
    }

    /// Reads the first MiB in clusters, then a few spots further out: enough to walk the
    /// mapping tables without reading gigabytes of a large virtual disk.
    static func readSample(_ device: any BlockDevice) throws {
        let chunk: UInt64 = 64 << 10
        var buffer = [UInt8](repeating: 0, count: Int(chunk))
        var offsets: [UInt64] = Array(stride(from: UInt64(0), to: min(device.size, UInt64(1 << 20)), by: Int(chunk)))
        for far in [device.size / 2, device.size &- chunk] where far < device.size {
            offsets.append(far & ~UInt64(511))
        }
        for offset in offsets {
            let count = Int(min(chunk, device.size - offset))
            try buffer.withUnsafeMutableBytes { try device.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<count]), at: offset) }
        }
    }
}
