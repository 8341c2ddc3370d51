import Foundation
import WispCore

/// A KubeVirt `containerDisk` image: one uncompressed layer whose tar holds the disk at
/// `disk/<name>.qcow2`, owned by 107:107 (the qemu user of KubeVirt's launcher pod, as
/// KubeVirt's documentation builds it with `ADD --chown=107:107`), and an image config for
/// linux. Headers carry mtime 0 so the same disk gives the same layer digest (a second
/// push of it uploads nothing).
public struct ContainerDiskImage: Sendable {
    public static let layerMediaType = "application/vnd.oci.image.layer.v1.tar"
    public static let owner = 107

    public var layerPath: String
    public var layer: OCIDescriptor
    public var config: [UInt8]
    public var configDescriptor: OCIDescriptor
    public var manifest: [UInt8]
    public var manifestDigest: OCIDigest

    /// Writes the layer tar of `disk` to `layerPath` (the caller's temporary file) and
    /// builds config and manifest. `diskName` becomes `disk/<diskName>.qcow2`.
    public init(disk: String, diskName: String, layerPath: String, architecture: String) throws {
        guard !diskName.isEmpty, diskName.utf8.count <= 80, !diskName.contains("/"), diskName != "." && diskName != ".." else {
            throw WispError(.invalidArgument, "\(diskName): not usable as a disk file name in a containerDisk")
        }
        self.layerPath = layerPath
        let digester = SHA256Digester()
        var written: UInt64 = 0
        guard let input = FileHandle(forReadingAtPath: disk) else { throw WispError(.notFound, "\(disk): cannot open the disk") }
        defer { try? input.close() }
        // Owner-only: the layer holds the guest's whole disk.
        let descriptor = open(layerPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw WispError.posix("open", layerPath, errno: errno) }
        let output = FileHandle(fileDescriptor: descriptor, closeOnDealloc: false)
        defer { try? output.close() }
        func emit(_ bytes: [UInt8]) throws {
            digester.update(bytes)
            try output.write(contentsOf: bytes)
            written += UInt64(bytes.count)
        }
        let size = try FileManager.default.attributesOfItem(atPath: disk)[.size] as? UInt64 ?? 0
        try emit(Self.header(name: "disk/", mode: 0o555, size: 0, type: "5"))
        try emit(Self.header(name: "disk/\(diskName).qcow2", mode: 0o444, size: size, type: "0"))
        var copied: UInt64 = 0
        while true {
            let chunk = try input.read(upToCount: 1 << 20) ?? Data()
            if chunk.isEmpty { break }
            copied += UInt64(chunk.count)
            guard copied <= size else { throw WispError(.io, "\(disk): the disk grew while it was being packed") }
            try emit(Array(chunk))
        }
        guard copied == size else { throw WispError(.io, "\(disk): the disk shrank while it was being packed") }
        let padding = Int((512 - size % 512) % 512)
        try emit([UInt8](repeating: 0, count: padding + 1024))
        let layerDigest = digester.finalize()
        layer = OCIDescriptor(mediaType: Self.layerMediaType, digest: layerDigest, size: Int64(written))

        let configObject: [String: Any] = [
            "architecture": architecture, "os": "linux",
            "rootfs": ["type": "layers", "diff_ids": [layerDigest.description]],
            "config": [String: Any](),
        ]
        config = Array(try JSONSerialization.data(withJSONObject: configObject, options: [.sortedKeys]))
        configDescriptor = OCIDescriptor(mediaType: OCIMediaType.ociConfig, digest: SHA256Digester.digest(config), size: Int64(config.count))
        let manifestObject: [String: Any] = [
            "schemaVersion": 2, "mediaType": OCIMediaType.ociManifest,
            "config": ["mediaType": configDescriptor.mediaType, "digest": configDescriptor.digest.description, "size": configDescriptor.size],
            "layers": [["mediaType": layer.mediaType, "digest": layer.digest.description, "size": layer.size]],
        ]
        manifest = Array(try JSONSerialization.data(withJSONObject: manifestObject, options: [.sortedKeys, .withoutEscapingSlashes]))
        manifestDigest = SHA256Digester.digest(manifest)
    }

    /// A ustar header; sizes of 8 GiB and more in GNU base-256 (read by GNU tar and Go's
    /// archive/tar, which the container tools use).
    static func header(name: String, mode: Int, size: UInt64, type: Character) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) {
            for (index, byte) in text.utf8.prefix(width).enumerated() { block[offset + index] = byte }
        }
        func octal(_ value: UInt64, at offset: Int, width: Int) {
            let digits = String(value, radix: 8)
            put(String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits, at: offset, width: width - 1)
        }
        put(name, at: 0, width: 100)
        octal(UInt64(mode), at: 100, width: 8)
        octal(UInt64(owner), at: 108, width: 8)
        octal(UInt64(owner), at: 116, width: 8)
        if size < 1 << 33 {
            octal(size, at: 124, width: 12)
        } else {
            block[124] = 0x80
            for index in 0..<8 { block[135 - index] = UInt8(truncatingIfNeeded: size >> (8 * UInt64(index))) }
        }
        octal(0, at: 136, width: 12)
        block[156] = type.asciiValue ?? 0x30
        put("ustar", at: 257, width: 6)
        put("00", at: 263, width: 2)
        // No user or group names: tar run as root maps names before ids, and a "qemu" on
        // the extracting host need not be 107.
        for index in 148..<156 { block[index] = 0x20 }
        let sum = block.reduce(0) { $0 + Int($1) }
        let digits = String(sum, radix: 8)
        put(String(repeating: "0", count: max(0, 6 - digits.count)) + digits, at: 148, width: 6)
        block[154] = 0
        block[155] = 0x20
        return block
    }
}
