#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore
import WispTestSupport
@testable import OCI

/// A sink that records the merged tree as `RootFSRecord`s (checking the emission order on
/// the way: parents first, hard links after their targets).
struct RecordingSink: RootFSSink {
    var records: [String: RootFSRecord] = [:]
    var order: [String] = []
    /// The link count each inode was announced with, by its first name.
    var announcedLinks: [String: Int] = [:]
    private var groups: [String: [String]] = [:]

    mutating func directory(_ path: RootFSPath, metadata: RootFSMetadata) throws {
        try expectParent(path)
        records[path.description] = record("dir", metadata)
        order.append(path.description)
    }

    mutating func file(_ path: RootFSPath, metadata: RootFSMetadata, size: UInt64, links: Int, contents: RootFSFileContents) throws {
        try expectParent(path)
        announcedLinks[path.description] = links
        let digester = SHA256Digester()
        var position: UInt64 = 0
        let zeros = [UInt8](repeating: 0, count: 1 << 16)
        func pad(to offset: UInt64) {
            while position < offset {
                let n = Int(min(UInt64(zeros.count), offset - position))
                zeros.withUnsafeBytes { digester.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                position += UInt64(n)
            }
        }
        try contents.forEachBlock { offset, bytes in
            precondition(offset >= position, "blocks out of order")
            pad(to: offset)
            digester.update(bytes)
            position += UInt64(bytes.count)
        }
        pad(to: size)
        var entry = record("file", metadata)
        entry.size = size
        entry.sha256 = digester.finalize().hex
        records[path.description] = entry
        order.append(path.description)
    }

    mutating func symlink(_ path: RootFSPath, target: [UInt8], metadata: RootFSMetadata, links: Int) throws {
        try expectParent(path)
        announcedLinks[path.description] = links
        var entry = record("symlink -> \(String(decoding: target, as: UTF8.self))", metadata)
        entry.permissions = 0  // symlink modes mean nothing on Linux
        records[path.description] = entry
        order.append(path.description)
    }

    mutating func special(_ path: RootFSPath, kind: RootFSSpecialFile, metadata: RootFSMetadata, links: Int) throws {
        try expectParent(path)
        announcedLinks[path.description] = links
        let name = switch kind {
        case .characterDevice(let major, let minor): "char \(major),\(minor)"
        case .blockDevice(let major, let minor): "block \(major),\(minor)"
        case .fifo: "fifo"
        }
        records[path.description] = record(name, metadata)
        order.append(path.description)
    }

    mutating func hardLink(_ path: RootFSPath, target: RootFSPath) throws {
        try expectParent(path)
        guard let base = records[target.description] else { throw WispError(.failed, "hard link \(path) before its target \(target)") }
        records[path.description] = base
        groups[target.description, default: [target.description]].append(path.description)
        order.append(path.description)
    }

    private func expectParent(_ path: RootFSPath) throws {
        guard !path.isRoot else { return }
        let parent = RootFSPath(components: Array(path.components.dropLast()))
        guard records[parent.description]?.kind == "dir" else { throw WispError(.failed, "\(path) emitted before its directory \(parent)") }
    }

    private func record(_ kind: String, _ metadata: RootFSMetadata) -> RootFSRecord {
        RootFSRecord(kind: kind, permissions: metadata.permissions, uid: metadata.uid, gid: metadata.gid,
                     mtime: kind == "dir" ? nil : metadata.modificationTime,
                     xattrs: Dictionary(uniqueKeysWithValues: metadata.xattrs.map { ($0.name, $0.value) }))
    }

    /// Records with their hard-link groups filled in (the announced link counts checked).
    func finished() -> [String: RootFSRecord] {
        for (first, count) in announcedLinks {
            precondition(count == (groups[first]?.count ?? 1), "\(first) announced \(count) links, got \(groups[first]?.count ?? 1)")
        }
        var result = records
        for members in groups.values {
            for member in members { result[member]?.links = members.sorted() }
        }
        return result
    }
}

/// Pulls `reference` into `store` and merges it, returning the image, the merged tree and
/// its records.
func pullAndRecord(_ reference: String, store: OCIBlobStore, options: OCIPullOptions = OCIPullOptions()) async throws
    -> (OCIPulledImage, MergedRootFS, [String: RootFSRecord]) {
    let image = try await OCIPuller(store: store, options: options).pull(try OCIReference.parse(reference))
    let merged = try MergedRootFS.build(layers: image.layers)
    var sink = RecordingSink()
    try merged.emit(into: &sink)
    return (image, merged, sink.finished())
}
