import CArchive
import DiskImage
import WispCore

/// Tells an OVA or a Vagrant box from a disk image by its bytes, never by its name: an
/// OVA is a tar whose first member is an .ovf (as the OVF standard requires); a box is any
/// other tar, plain or gzip/bzip2/xz/zstd-compressed (a plain one must hold metadata.json,
/// box.img or an .ovf at its top). Anything else is nil and is read as a disk image.
public enum MachineArchiveProbe {
    public static func kind(of path: String) -> MachineArchiveImage.Kind? {
        // A gzipped box holding no disk can be smaller than one tar block: look at what there is.
        guard let device = try? FileBlockDevice(path: path), device.size >= 6,
              let head = try? device.read(at: 0, count: Int(min(device.size, 512))) else { return nil }
        if OvaArchive.isOva(device) { return .ova }
        let compressed = head.starts(with: [0x1F, 0x8B]) || head.starts(with: Array("BZh".utf8))
            || head.starts(with: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) || head.starts(with: [0x28, 0xB5, 0x2F, 0xFD])
        if compressed { return startsWithTarHeader(path) ? .box : nil }
        guard let index = try? TarIndex(device) else { return nil }
        let names = Set(index.members.map { TarIndex.normalizedName($0.name) })
        let boxLike = names.contains("metadata.json") || names.contains("box.img")
            || names.contains { !$0.contains("/") && $0.lowercased().hasSuffix(".ovf") }
        return boxLike ? .box : nil
    }

    /// The file's disk format, asked only when it is no OVA or box: the probe refuses tars
    /// and compressed files as "not a disk image", which a box is. An archive reads as raw
    /// here; `importingArchive` then swaps in its boot disk.
    static func diskFormat(of path: String) throws -> ImageFormat {
        if kind(of: path) != nil { return .raw }
        return try ImageFormat.probe(try FileBlockDevice(path: path, writable: false))
    }

    /// Whether libarchive reads a tar header at the start of the (decompressed) stream:
    /// a gzipped disk image (`.img.gz`) is not a box.
    static func startsWithTarHeader(_ path: String) -> Bool {
        guard let archive = archive_read_new() else { return false }
        defer { archive_read_free(archive) }
        archive_read_support_format_tar(archive)
        for filter in [archive_read_support_filter_gzip, archive_read_support_filter_bzip2,
                       archive_read_support_filter_xz, archive_read_support_filter_zstd] {
            _ = filter(archive)
        }
        guard archive_read_open_filename(archive, path, 1 << 16) == ARCHIVE_OK else { return false }
        var entry: OpaquePointer?
        let rc = archive_read_next_header(archive, &entry)
        return rc == ARCHIVE_OK || rc == ARCHIVE_WARN
    }
}
