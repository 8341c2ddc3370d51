import CArchive
import Foundation
import WispCore

/// Streams a Vagrant box (a tar, plain or gzip/bzip2/xz/zstd-compressed) once through
/// libarchive and keeps what Wisp needs: metadata.json and an OVF descriptor in memory
/// (bounded), disk files written into `directory` under names Wisp chooses (`member-N`),
/// never names from the archive, so a tar name can never place a file anywhere. A gzipped
/// tar cannot be read at random, which is why the disks are unpacked at all.
///
/// Every byte the archive yields is counted: a disk may not grow past what its own header
/// (qcow2 or sparse VMDK) or the box's metadata declares plus slack, and the whole stream
/// past `limits.maxTotalBytes`, so a decompression bomb stops early, in memory bounded by
/// one buffer.
struct BoxUnpacker {
    struct Limits: Sendable {
        /// Uncompressed bytes the whole box may yield (discarded members included).
        var maxTotalBytes: UInt64 = 512 << 30
        /// metadata.json, read into memory.
        var maxMetadataBytes = 64 << 10
        /// What a disk may hold beyond its declared virtual size, besides 1/8 for metadata.
        var diskSlackBytes: UInt64 = 16 << 20
        static let maxMembers = 10_000
        static let maxNameBytes = 4096
    }

    struct Contents: Sendable {
        var metadataJSON: [UInt8]?
        var ovf: (name: String, bytes: [UInt8])?
        /// Normalised tar name of each unpacked disk-like file -> where it was written.
        var files: [String: String] = [:]
    }

    let path: String
    let directory: String
    var limits = Limits()

    /// Root-level files that may hold a disk; everything else is read past.
    static func isDiskName(_ name: String) -> Bool {
        let lower = name.lowercased()
        return !name.contains("/") && [".img", ".qcow2", ".vmdk", ".raw"].contains { lower.hasSuffix($0) }
    }

    /// "./box.img" -> "box.img"; nil for a directory entry "./". Names that are absolute or
    /// climb with ".." are refused: no honest box has them.
    static func normalized(_ raw: String, member: Int, archive: String) throws -> String? {
        var name = Substring(raw)
        while name.hasPrefix("./") { name = name.dropFirst(2) }
        while name.hasSuffix("/") { name = name.dropLast() }
        if name.isEmpty || name == "." { return nil }
        if name.hasPrefix("/") || name.split(separator: "/").contains("..") {
            throw WispError.corrupt(archive, "box tar member \(member)", "name \"\(raw.prefix(200))\" is absolute or climbs out with .. (refused)")
        }
        return String(name)
    }

    func unpack() throws -> Contents {
        guard let archive = archive_read_new() else { throw WispError(.failed, "\(path): libarchive could not start") }
        defer { archive_read_free(archive) }
        archive_read_support_format_tar(archive)
        for filter in [archive_read_support_filter_none, archive_read_support_filter_gzip, archive_read_support_filter_bzip2,
                       archive_read_support_filter_xz, archive_read_support_filter_zstd] {
            _ = filter(archive)
        }
        guard archive_read_open_filename(archive, path, 1 << 16) == ARCHIVE_OK else {
            throw WispError.corrupt(path, "Vagrant box", "not a tar archive libarchive reads: \(Self.message(archive))")
        }
        var contents = Contents()
        var total: UInt64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var member = 0
        while true {
            var entryPointer: OpaquePointer?
            let rc = archive_read_next_header(archive, &entryPointer)
            if rc == ARCHIVE_EOF { break }
            member += 1
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry = entryPointer else {
                throw WispError.corrupt(path, "box tar member \(member)", "unreadable header: \(Self.message(archive))")
            }
            guard member <= Limits.maxMembers else {
                throw WispError.corrupt(path, "Vagrant box", "more than \(Limits.maxMembers) tar members")
            }
            guard let cName = archive_entry_pathname(entry) ?? archive_entry_pathname_utf8(entry), strlen(cName) <= Limits.maxNameBytes else {
                throw WispError.corrupt(path, "box tar member \(member)", "has no name or one longer than \(Limits.maxNameBytes) bytes")
            }
            guard let name = try Self.normalized(String(cString: cName), member: member, archive: path) else { continue }
            // AE_IFREG is a cast macro Swift does not import; hard links report type 0.
            let regular = archive_entry_filetype(entry) == 0o100000 && archive_entry_hardlink(entry) == nil
            let sink: Sink
            if !regular {
                // A link named box.img would make the disk whatever it points at: never followed.
                sink = .discard
            } else if name == "metadata.json" {
                sink = .memory(limit: limits.maxMetadataBytes)
            } else if !name.contains("/"), name.lowercased().hasSuffix(".ovf") {
                sink = .memory(limit: 4 << 20)
            } else if Self.isDiskName(name) {
                sink = .file
            } else {
                sink = .discard
            }
            if sink != .discard, contents.files[name] != nil || (name == "metadata.json" && contents.metadataJSON != nil)
                || (contents.ovf?.name == name) {
                throw WispError.corrupt(path, "box tar member \(member)", "\(name) appears twice (refused: which one is meant is unclear)")
            }
            let declared = Self.declaredVirtualSize(contents.metadataJSON)
            let result = try copy(archive, entry: member, name: name, sink: sink, buffer: &buffer, total: &total, declared: declared)
            switch sink {
            case .memory where name == "metadata.json": contents.metadataJSON = result.bytes
            case .memory: contents.ovf = (name, result.bytes)
            case .file: contents.files[name] = result.file
            case .discard: break
            }
        }
        return contents
    }

    enum Sink: Equatable {
        case discard, file
        case memory(limit: Int)
    }

    /// Reads the current member's data into `sink`, counting every byte against the limits.
    private func copy(_ archive: OpaquePointer, entry: Int, name: String, sink: Sink, buffer: inout [UInt8],
                      total: inout UInt64, declared: UInt64?) throws -> (bytes: [UInt8], file: String?) {
        var bytes: [UInt8] = []
        var file: PosixFile? = nil
        var target: String? = nil
        if sink == .file {
            target = "\(directory)/member-\(entry)"
            file = try PosixFile(path: target!, mode: .createExclusive(permissions: 0o600))
        }
        defer { file?.close() }
        var written: UInt64 = 0
        var head: [UInt8] = []
        var bound: UInt64? = declared.map { slackAdded($0) }
        while true {
            let n = buffer.withUnsafeMutableBytes { archive_read_data(archive, $0.baseAddress, $0.count) }
            if n == 0 { break }
            guard n > 0 else {
                throw WispError.corrupt(path, "box tar member \(entry) (\(name.prefix(200)))", "at byte \(written): \(Self.message(archive))")
            }
            let count = UInt64(n)
            total += count
            guard total <= limits.maxTotalBytes else {
                throw WispError.corrupt(path, "Vagrant box", "unpacks to more than \(limits.maxTotalBytes) bytes (a decompression bomb?); refused at member \(entry) (\(name.prefix(200)))")
            }
            switch sink {
            case .discard: break
            case .memory(let limit):
                guard bytes.count + n <= limit else {
                    throw WispError.corrupt(path, "box tar member \(entry) (\(name.prefix(200)))", "more than \(limit) bytes")
                }
                bytes += buffer[0..<n]
            case .file:
                if head.count < 512 {
                    head += buffer[0..<min(n, 512 - head.count)]
                    if head.count == 512, let own = Self.headerVirtualSize(head) { bound = min(bound ?? .max, slackAdded(own)) }
                }
                let (sum, overflow) = written.addingReportingOverflow(count)
                if let bound, overflow || sum > bound {
                    throw WispError.corrupt(path, "box tar member \(entry) (\(name.prefix(200)))",
                                            "unpacks past \(bound) bytes, beyond the virtual size its header or metadata.json declares (a decompression bomb?)")
                }
                // All-zero pieces stay holes: a raw disk unpacks sparse.
                if buffer[0..<n].contains(where: { $0 != 0 }) {
                    try buffer.withUnsafeBytes { try file!.write(UnsafeRawBufferPointer(rebasing: $0[0..<n]), at: written) }
                }
                written = sum
            }
        }
        if let file {
            try file.truncate(to: written)
            try file.sync()
        }
        return (bytes, target)
    }

    /// `size + size/8 + slack`, saturating: a disk file holds at most its virtual size plus
    /// metadata (qcow2 L1/L2/refcount tables, VMDK grain tables: far less than an eighth).
    private func slackAdded(_ size: UInt64) -> UInt64 {
        let (a, o1) = size.addingReportingOverflow(size / 8)
        let (b, o2) = a.addingReportingOverflow(limits.diskSlackBytes)
        return o1 || o2 ? .max : b
    }

    /// The virtual size a qcow2 header (offset 24, big-endian) or a sparse VMDK header
    /// ("KDMV", capacity in sectors at 12, little-endian) declares.
    static func headerVirtualSize(_ head: [UInt8]) -> UInt64? {
        guard head.count >= 32 else { return nil }
        if head[0..<4].elementsEqual([0x51, 0x46, 0x49, 0xFB]) {
            return head[24..<32].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        if head[0..<4].elementsEqual(Array("KDMV".utf8)) {
            let sectors = head[12..<20].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let (bytes, overflow) = sectors.multipliedReportingOverflow(by: 512)
            return overflow ? nil : bytes
        }
        return nil
    }

    /// vagrant-libvirt's `virtual_size` (GiB) when metadata.json came first.
    static func declaredVirtualSize(_ metadata: [UInt8]?) -> UInt64? {
        guard let metadata, let parsed = try? BoxMetadata.parse(metadata, name: ""), let gib = parsed.virtualSizeGiB else { return nil }
        let (bytes, overflow) = gib.multipliedReportingOverflow(by: 1 << 30)
        return overflow ? nil : bytes
    }

    static func message(_ archive: OpaquePointer) -> String {
        archive_error_string(archive).map { String(cString: $0) } ?? "unreadable"
    }
}
