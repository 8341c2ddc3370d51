import FileSystems
import OCI
import WispCore

/// Pass 2 of a merged container root filesystem, written straight into an ext4 image:
/// every directory, file, symlink, device node, FIFO and hard link with its owner, mode,
/// nanosecond mtime and extended attributes. File contents stream from the layer into
/// the writer's blocks; gaps in sparse files stay holes. Files named in `capture` (small
/// configuration the boot entry needs: kargs.d, os-release) are also kept in memory, up
/// to `captureLimit` bytes each, so nothing is read from the layers twice.
struct Ext4RootFSSink: RootFSSink {
    let writer: Ext4Writer
    let capture: Set<RootFSPath>
    static let captureLimit: UInt64 = 1 << 20
    private(set) var captured: [RootFSPath: [UInt8]] = [:]

    init(writer: Ext4Writer, capture: Set<RootFSPath>) {
        self.writer = writer
        self.capture = capture
    }

    /// Ext4Writer takes paths as text; a name that is not UTF-8 cannot be carried through
    /// it unchanged, so it is refused rather than renamed.
    static func name(_ path: RootFSPath) throws -> String {
        guard let text = String(validating: path.bytes, as: UTF8.self) else {
            throw WispError.unsupported(path.description, "a file name that is not valid UTF-8 cannot be written to the ext4 root filesystem")
        }
        return "/" + text
    }

    static func metadata(_ m: RootFSMetadata) -> Ext4EntryMetadata {
        let time = Timestamp(seconds: m.modificationTime.seconds, nanoseconds: m.modificationTime.nanoseconds)
        var xattrs: [String: [UInt8]] = [:]
        for x in m.xattrs { xattrs[x.name] = x.value }
        return Ext4EntryMetadata(permissions: UInt32(m.permissions & 0o7777), uid: m.uid, gid: m.gid,
                                 modificationTime: time, xattrs: xattrs)
    }

    mutating func directory(_ path: RootFSPath, metadata: RootFSMetadata) throws {
        if path.isRoot {
            try writer.setDirectoryMetadata("/", metadata: Self.metadata(metadata))
        } else {
            try writer.addDirectory(try Self.name(path), metadata: Self.metadata(metadata))
        }
    }

    mutating func file(_ path: RootFSPath, metadata: RootFSMetadata, size: UInt64, links: Int, contents: RootFSFileContents) throws {
        let keep = capture.contains(path) && size <= Self.captureLimit
        var kept: [UInt8] = []
        try writer.addFile(try Self.name(path), metadata: Self.metadata(metadata), size: size) { sink in
            var position: UInt64 = 0
            try contents.forEachBlock { offset, bytes in
                // Blocks come at increasing offsets; what lies between them is a hole.
                guard offset >= position else {
                    throw WispError.corrupt(path.description, "layer file data", at: offset, "a block starts before the end of the previous one")
                }
                if offset > position {
                    try sink.writeHole(offset - position)
                    if keep { kept += [UInt8](repeating: 0, count: Int(offset - position)) }
                }
                try sink.write(bytes)
                if keep { kept += bytes }
                position = offset + UInt64(bytes.count)
            }
            if size > position {
                try sink.writeHole(size - position)
                if keep { kept += [UInt8](repeating: 0, count: Int(size - position)) }
            }
        }
        if keep { captured[path] = kept }
    }

    mutating func symlink(_ path: RootFSPath, target: [UInt8], metadata: RootFSMetadata, links: Int) throws {
        guard let text = String(validating: target, as: UTF8.self) else {
            throw WispError.unsupported(path.description, "a symlink target that is not valid UTF-8 cannot be written to the ext4 root filesystem")
        }
        try writer.addSymlink(try Self.name(path), target: text, metadata: Self.metadata(metadata))
    }

    mutating func special(_ path: RootFSPath, kind: RootFSSpecialFile, metadata: RootFSMetadata, links: Int) throws {
        let special: Ext4SpecialFile = switch kind {
        case .characterDevice(let major, let minor): .characterDevice(major: major, minor: minor)
        case .blockDevice(let major, let minor): .blockDevice(major: major, minor: minor)
        case .fifo: .fifo
        }
        try writer.addSpecialFile(try Self.name(path), special, metadata: Self.metadata(metadata))
    }

    mutating func hardLink(_ path: RootFSPath, target: RootFSPath) throws {
        try writer.addHardLink(try Self.name(path), target: try Self.name(target))
    }
}
