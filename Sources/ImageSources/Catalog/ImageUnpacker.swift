import CArchive
import Foundation
import WispCore

/// Unpacks a downloaded image on its way into the cache: a compressed disk (`.xz`, `.gz`,
/// `.zst`, `.bz2`) is decompressed, a tarball (`.tar.xz`, `.tar.gz`, `.tar`: Debian's and
/// Azure's `disk.raw` inside) gives its one disk. libarchive does the reading (it is linked
/// already, for OCI layers and boxes); runs of zeros become holes, so a 2 GiB raw disk that
/// holds 400 MiB takes 400 MiB.
enum ImageUnpacker {
    /// The suffix a download's name ends with that means unpacking, or nil.
    static func packing(of name: String) -> String? {
        let lower = name.lowercased()
        for suffix in [".tar.xz", ".tar.gz", ".tar.zst", ".tar.bz2", ".tgz", ".tar", ".xz", ".gz", ".zst", ".bz2"] where lower.hasSuffix(suffix) {
            return suffix
        }
        return nil
    }

    /// The name the unpacked disk gets: the download's name without the packing suffix
    /// (and `.raw` when a tarball's disk had no image suffix of its own).
    static func unpackedName(of name: String) -> String {
        guard let suffix = packing(of: name) else { return name }
        let stem = String(name.dropLast(suffix.count))
        return suffix.hasPrefix(".tar") || suffix == ".tgz" ? stem + ".raw" : stem
    }

    /// A disk image is at most this large unpacked (a hostile stream could expand forever).
    static let maxUnpackedBytes: UInt64 = 4 << 40

    /// Writes the unpacked disk of `source` into `output`, returning its SHA-256 and size.
    static func unpack(_ source: String, into output: PosixFile, progress: ((UInt64) -> Void)? = nil) throws -> (sha256: String, size: UInt64) {
        try withArchive(source, open: { archive_read_open_filename($0, source, 1 << 20) }) { archive in
            try firstDisk(archive, source: source, into: output, progress: progress)
        }
    }

    /// The same, reading a download while it is still being written (see `GrowingFile`), so
    /// unpacking overlaps the transfer.
    static func unpack(growing file: GrowingFile, into output: PosixFile) throws -> (sha256: String, size: UInt64) {
        let source = file.path
        let context = Unmanaged.passUnretained(file).toOpaque()
        return try withExtendedLifetime(file) {
            try withArchive(source, open: { archive in
                archive_read_open(archive, context, nil, { _, context, buffer in
                    guard let context, let buffer else { return -1 }
                    return Unmanaged<GrowingFile>.fromOpaque(context).takeUnretainedValue().read(buffer)
                }, nil)
            }) { archive in
                try firstDisk(archive, source: source, into: output, progress: nil)
            }
        }
    }

    private static func withArchive<T>(_ source: String, open: (OpaquePointer) -> Int32, _ body: (OpaquePointer) throws -> T) throws -> T {
        guard let archive = archive_read_new() else { throw WispError(.failed, "\(source): libarchive could not start") }
        defer { archive_read_free(archive) }
        for filter in [archive_read_support_filter_gzip, archive_read_support_filter_bzip2,
                       archive_read_support_filter_xz, archive_read_support_filter_zstd] {
            _ = filter(archive)
        }
        // tar bids before raw: a tarball is read as one, anything else as the single stream.
        archive_read_support_format_tar(archive)
        archive_read_support_format_raw(archive)
        guard open(archive) == ARCHIVE_OK else {
            throw WispError.corrupt(source, "compressed image", "libarchive cannot read it: \(message(archive))")
        }
        return try body(archive)
    }

    private static func firstDisk(_ archive: OpaquePointer, source: String, into output: PosixFile, progress: ((UInt64) -> Void)?) throws -> (sha256: String, size: UInt64) {
        var member = 0
        while true {
            var entryPointer: OpaquePointer?
            let rc = archive_read_next_header(archive, &entryPointer)
            if rc == ARCHIVE_EOF {
                throw WispError.corrupt(source, "image tarball", "holds no regular file (no disk inside)")
            }
            member += 1
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry = entryPointer else {
                throw WispError.corrupt(source, "compressed image member \(member)", "unreadable: \(message(archive))")
            }
            guard member <= 64 else { throw WispError.corrupt(source, "image tarball", "more than 64 members before a disk") }
            let isRaw = archive_format(archive) == ARCHIVE_FORMAT_RAW
            // AE_IFREG is a cast macro Swift does not import.
            let regular = archive_entry_filetype(entry) == 0o100000 && archive_entry_hardlink(entry) == nil
            guard isRaw || regular else { continue }
            return try copy(archive, source: source, into: output, progress: progress)
        }
    }

    private static func copy(_ archive: OpaquePointer, source: String, into output: PosixFile, progress: ((UInt64) -> Void)?) throws -> (sha256: String, size: UInt64) {
        let hasher = try ChecksumDigester(.sha256)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: UInt64 = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { archive_read_data(archive, $0.baseAddress, $0.count) }
            if n == 0 { break }
            guard n > 0 else { throw WispError.corrupt(source, "compressed image", "at unpacked byte \(offset): \(message(archive))") }
            guard offset + UInt64(n) <= maxUnpackedBytes else {
                throw WispError.corrupt(source, "compressed image", "unpacks to more than \(ByteSize.format(maxUnpackedBytes))")
            }
            try buffer.withUnsafeBytes { raw in
                let piece = UnsafeRawBufferPointer(rebasing: raw[0..<n])
                hasher.update(piece)
                // Runs of zeros (64 KiB at a time) are left as holes; the file is extended
                // to its size at the end.
                var start = 0
                while start < n {
                    let end = min(n, start + (64 << 10))
                    let slice = UnsafeRawBufferPointer(rebasing: piece[start..<end])
                    if !slice.allSatisfy({ $0 == 0 }) { try output.write(slice, at: offset + UInt64(start)) }
                    start = end
                }
            }
            offset += UInt64(n)
            progress?(offset)
        }
        try output.truncate(to: offset)
        return (hasher.finalize(), offset)
    }

    static func message(_ archive: OpaquePointer) -> String {
        archive_error_string(archive).map { String(cString: $0) } ?? "unreadable"
    }
}
