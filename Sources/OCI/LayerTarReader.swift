#if canImport(Glibc)
import Glibc
#endif
import CArchive
import WispCore

/// One tar entry as libarchive reads it (ustar, PAX, GNU long names and sparse files),
/// with names as raw bytes.
struct LayerTarEntry {
    enum Kind: Equatable {
        case regular, directory, symlink, hardLink, special(RootFSSpecialFile)
    }

    var index: Int
    var path: [UInt8]
    var kind: Kind
    var size: UInt64
    var linkTarget: [UInt8]
    var metadata: RootFSMetadata
}

/// Reads a layer's tar stream through libarchive, fed from a `LayerStream` (so the
/// decompression, its bound and the diff_id hash stay ours).
final class LayerTarReader {
    let stream: LayerStream
    let source: String
    private let archive: OpaquePointer
    private var buffer = [UInt8](repeating: 0, count: 1 << 18)
    private var failure: Error?
    private var entryIndex = -1
    private(set) var finished = false

    static let maxPathBytes = 4096
    static let maxXattrs = 128
    static let maxXattrBytes = 64 << 10

    init(stream: LayerStream) throws {
        self.stream = stream
        source = stream.source
        guard let archive = archive_read_new() else { throw WispError(.failed, "\(stream.source): libarchive could not start") }
        self.archive = archive
        archive_read_support_format_tar(archive)
        archive_read_support_filter_none(archive)
        let context = Unmanaged.passUnretained(self).toOpaque()
        let rc = archive_read_open(archive, context, nil, { _, context, bufferOut in
            guard let context, let bufferOut else { return -1 }
            let reader = Unmanaged<LayerTarReader>.fromOpaque(context).takeUnretainedValue()
            return reader.fill(bufferOut)
        }, nil)
        guard rc == ARCHIVE_OK else {
            // deinit frees the archive: every stored property is set by now.
            throw failure ?? WispError.corrupt(source, "layer tar", archive_error_string(archive).map { String(cString: $0) } ?? "cannot be opened")
        }
    }

    deinit { archive_read_free(archive) }

    private func fill(_ out: UnsafeMutablePointer<UnsafeRawPointer?>) -> Int {
        do {
            let n = try buffer.withUnsafeMutableBytes { try stream.read(into: $0) }
            buffer.withUnsafeBytes { out.pointee = $0.baseAddress }
            return n
        } catch {
            failure = error
            return -1
        }
    }

    private func error(_ what: String) -> Error {
        if let failure { return failure }
        let detail = archive_error_string(archive).map { String(cString: $0) } ?? "unreadable"
        return WispError.corrupt(source, "layer tar entry \(entryIndex + 1)", "\(what): \(detail)")
    }

    /// The next entry, or nil after the last.
    func next() throws -> LayerTarEntry? {
        guard !finished else { return nil }
        var entryPointer: OpaquePointer?
        let rc = archive_read_next_header(archive, &entryPointer)
        entryIndex += 1
        if rc == ARCHIVE_EOF {
            finished = true
            return nil
        }
        guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry = entryPointer else { throw error("bad header") }
        let path = Self.bytes(archive_entry_pathname(entry)) ?? Self.bytes(archive_entry_pathname_utf8(entry))
        guard let path, !path.isEmpty else { throw error("entry without a name") }
        guard path.count <= Self.maxPathBytes else {
            throw WispError.corrupt(source, "layer tar entry \(entryIndex + 1)", "name of \(path.count) bytes is longer than \(Self.maxPathBytes)")
        }
        var kind: LayerTarEntry.Kind
        var target: [UInt8] = []
        if let hard = Self.bytes(archive_entry_hardlink(entry)) ?? Self.bytes(archive_entry_hardlink_utf8(entry)) {
            kind = .hardLink
            target = hard
        } else {
            // AE_IFREG and friends are cast macros Swift does not import.
            switch archive_entry_filetype(entry) {
            case 0o100000: kind = .regular
            case 0o040000: kind = .directory
            case 0o120000:
                kind = .symlink
                target = Self.bytes(archive_entry_symlink(entry)) ?? Self.bytes(archive_entry_symlink_utf8(entry)) ?? []
            case 0o020000:
                kind = .special(.characterDevice(major: UInt32(truncatingIfNeeded: archive_entry_rdevmajor(entry)), minor: UInt32(truncatingIfNeeded: archive_entry_rdevminor(entry))))
            case 0o060000:
                kind = .special(.blockDevice(major: UInt32(truncatingIfNeeded: archive_entry_rdevmajor(entry)), minor: UInt32(truncatingIfNeeded: archive_entry_rdevminor(entry))))
            case 0o010000: kind = .special(.fifo)
            default:
                throw WispError(.unsupported, "\(source): layer tar entry \(entryIndex + 1) (\(String(decoding: path, as: UTF8.self))) has file type 0o\(String(archive_entry_filetype(entry), radix: 8)), which a layer cannot hold")
            }
        }
        guard target.count <= Self.maxPathBytes else {
            throw WispError.corrupt(source, "layer tar entry \(entryIndex + 1)", "link target of \(target.count) bytes is longer than \(Self.maxPathBytes)")
        }
        let uid = archive_entry_uid(entry), gid = archive_entry_gid(entry)
        guard (0...Int64(UInt32.max)).contains(uid), (0...Int64(UInt32.max)).contains(gid) else {
            throw WispError.corrupt(source, "layer tar entry \(entryIndex + 1)", "owner \(uid):\(gid) is outside 0...\(UInt32.max)")
        }
        let size = archive_entry_size(entry)
        guard size >= 0 else { throw WispError.corrupt(source, "layer tar entry \(entryIndex + 1)", "negative size \(size)") }
        var xattrs: [RootFSXattr] = []
        var xattrBytes = 0
        if archive_entry_xattr_reset(entry) > 0 {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var length = 0
            while archive_entry_xattr_next(entry, &name, &value, &length) == ARCHIVE_OK {
                guard let name else { continue }
                xattrBytes += length + strlen(name)
                guard xattrs.count < Self.maxXattrs, xattrBytes <= Self.maxXattrBytes else {
                    throw WispError.corrupt(source, "layer tar entry \(entryIndex + 1)", "more than \(Self.maxXattrs) extended attributes or \(Self.maxXattrBytes) bytes of them")
                }
                let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []
                xattrs.append(RootFSXattr(name: String(cString: name), value: bytes))
            }
        }
        xattrs.sort { $0.name < $1.name }
        let metadata = RootFSMetadata(
            permissions: UInt16(archive_entry_perm(entry) & 0o7777),
            uid: UInt32(uid), gid: UInt32(gid),
            modificationTime: RootFSTimestamp(seconds: Int64(archive_entry_mtime(entry)),
                                              nanoseconds: UInt32(clamping: max(0, min(999_999_999, archive_entry_mtime_nsec(entry))))),
            xattrs: xattrs)
        return LayerTarEntry(index: entryIndex, path: path, kind: kind, size: kind == .regular ? UInt64(size) : 0,
                             linkTarget: target, metadata: metadata)
    }

    /// The current entry's next data block (offsets beyond `declaredSize` are corrupt).
    func nextDataBlock(declaredSize: UInt64) throws -> (offset: UInt64, bytes: UnsafeRawBufferPointer)? {
        var pointer: UnsafeRawPointer?
        var length = 0
        var offset: Int64 = 0
        let rc = archive_read_data_block(archive, &pointer, &length, &offset)
        if rc == ARCHIVE_EOF { return nil }
        guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN else { throw error("bad data") }
        let end = UInt64(max(0, offset)).addingReportingOverflow(UInt64(length))
        guard offset >= 0, !end.overflow, end.partialValue <= declaredSize else {
            throw WispError.corrupt(source, "layer tar entry \(entryIndex + 1)", "data at offset \(offset)+\(length) runs past the declared size \(declaredSize)")
        }
        return (UInt64(offset), UnsafeRawBufferPointer(start: pointer, count: length))
    }

    static func bytes(_ pointer: UnsafePointer<CChar>?) -> [UInt8]? {
        guard let pointer else { return nil }
        return Array(UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)))
    }
}
