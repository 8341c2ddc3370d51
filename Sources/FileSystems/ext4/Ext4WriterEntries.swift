import WispCore

/// Adding and removing entries. Every check on the caller's input (path, name, metadata,
/// attributes, sizes) happens before anything is allocated, so a refused entry leaves
/// the writer as it was.
extension Ext4Writer {
    static let regularFileType: UInt8 = 1
    static let directoryFileType: UInt8 = 2
    static let characterDeviceFileType: UInt8 = 3
    static let blockDeviceFileType: UInt8 = 4
    static let fifoFileType: UInt8 = 5
    static let socketFileType: UInt8 = 6
    static let symlinkFileType: UInt8 = 7

    /// A directory, or the metadata of one already made implicitly (or of the root, for
    /// "/" or "."). A directory given twice is refused.
    public func addDirectory(_ path: String, metadata: Ext4EntryMetadata) throws {
        try checkOpen(path)
        try check(metadata, path: path)
        _ = try Ext4WriterXattrs.split(try Ext4WriterXattrs.entries(metadata.xattrs, path: path), path: path)
        let components = try Self.components(path)
        guard let last = components.last else {
            try updateImplicitDirectory(Self.rootInode, metadata: metadata, path: path)
            return
        }
        let parent = try parentDirectory(components, path: path)
        if let existing = directories[parent]?.children[last] {
            guard existing.fileType == Self.directoryFileType else {
                throw WispError.invalidArgument("\(path): already exists and is not a directory")
            }
            try updateImplicitDirectory(existing.inode, metadata: metadata, path: path)
            return
        }
        let number = try allocateInode(for: path)
        directories[number] = Directory(name: last, parent: parent, metadata: metadata, explicit: true)
        directories[parent]?.children[last] = Child(inode: number, fileType: Self.directoryFileType)
        directories[parent]?.subdirectories += 1
        setLive(number, true)
    }

    /// New metadata for a directory already in the image (made explicitly or implicitly):
    /// what a later layer's entry for the same directory does. Its entries stay.
    public func setDirectoryMetadata(_ path: String, metadata: Ext4EntryMetadata) throws {
        try checkOpen(path)
        try check(metadata, path: path)
        _ = try Ext4WriterXattrs.split(try Ext4WriterXattrs.entries(metadata.xattrs, path: path), path: path)
        let directory = try existingDirectory(try Self.components(path), path: path)
        directories[directory]?.metadata = metadata
        directories[directory]?.explicit = true
    }

    /// A regular file of `size` bytes whose contents `writeContents` streams into the sink
    /// it is given (in order, any chunk sizes, `writeHole` for gaps); it must write exactly
    /// `size` bytes. If it throws, the file is not added and its blocks are freed.
    public func addFile(_ path: String, metadata: Ext4EntryMetadata, size: UInt64,
                        writeContents: (Ext4FileSink) throws -> Void) throws {
        try checkOpen(path)
        try check(metadata, path: path)
        guard size <= Self.maximumFileSize else {
            throw WispError.invalidArgument("\(path): a file of \(size) bytes is larger than ext4's \(Self.maximumFileSize)-byte limit")
        }
        let attributes = try Ext4WriterXattrs.split(try Ext4WriterXattrs.entries(metadata.xattrs, path: path), path: path)
        let (parent, name) = try newEntry(path)
        let number = try allocateInode(for: path)
        let mark = allocator.mark
        state = .writingFile
        let sink = Ext4FileSink(writer: self, path: path, inode: number, size: size)
        do {
            try writeContents(sink)
            try sink.close()
        } catch {
            // Nothing else was allocated meanwhile: give the blocks and the inode number
            // back (its slot is still the zero placeholder).
            sink.abandon()
            allocator.rollBack(to: mark)
            if number == nextInode - 1 { nextInode = number }
            if state == .writingFile { state = .open }
            throw error
        }
        state = .open
        var inode = Ext4WriterInode(mode: Ext4WriterInode.regularType, metadata: metadata)
        inode.size = size
        try finishInode(&inode, number: number, extents: sink.extents, dataBlocks: sink.allocatedBlocks,
                        attributes: attributes, path: path)
        link(number, name: name, fileType: Self.regularFileType, in: parent)
    }

    /// A regular file with the given contents.
    public func addFile(_ path: String, metadata: Ext4EntryMetadata, contents: [UInt8]) throws {
        try addFile(path, metadata: metadata, size: UInt64(contents.count)) { try $0.write(contents) }
    }

    /// A regular file whose contents `read` fills into the buffer it is given, returning
    /// the bytes it put there (0 at the end).
    public func addFile(_ path: String, metadata: Ext4EntryMetadata, size: UInt64,
                        reader read: (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        try addFile(path, metadata: metadata, size: size) { sink in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let n = try read(buffer)
                guard n > 0 else { break }
                guard n <= buffer.count else {
                    throw WispError.invalidArgument("\(path): the reader claims \(n) bytes in a \(buffer.count)-byte buffer")
                }
                try sink.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            }
        }
    }

    /// A symbolic link: targets under 60 bytes live in the inode, longer ones (up to 4095)
    /// in a block.
    public func addSymlink(_ path: String, target: String, metadata: Ext4EntryMetadata) throws {
        try checkOpen(path)
        try check(metadata, path: path)
        let bytes = Array(target.utf8)
        guard !bytes.isEmpty, bytes.count < Ext4WriterGeometry.blockSize, !bytes.contains(0) else {
            throw WispError.invalidArgument("\(path): a symbolic link target must have 1...\(Ext4WriterGeometry.blockSize - 1) bytes and no NUL (got \(bytes.count))")
        }
        let attributes = try Ext4WriterXattrs.split(try Ext4WriterXattrs.entries(metadata.xattrs, path: path), path: path)
        let (parent, name) = try newEntry(path)
        let number = try allocateInode(for: path)
        var inode = Ext4WriterInode(mode: Ext4WriterInode.symlinkType, metadata: metadata)
        inode.size = UInt64(bytes.count)
        if bytes.count < Ext4Inode.iBlockSize {
            inode.iBlock.replaceSubrange(0..<bytes.count, with: bytes)
            try finishInode(&inode, number: number, extents: nil, dataBlocks: 0, attributes: attributes, path: path)
        } else {
            let block = try allocator.allocate(1, owner: number, what: path)[0].lowerBound
            var contents = bytes
            contents += [UInt8](repeating: 0, count: Ext4WriterGeometry.blockSize - bytes.count)
            try failing { try data.write(contents, at: block * UInt64(Ext4WriterGeometry.blockSize)) }
            let extents = [Ext4WriterExtent(logical: 0, physical: block, length: 1)]
            try finishInode(&inode, number: number, extents: extents, dataBlocks: 1, attributes: attributes, path: path)
        }
        link(number, name: name, fileType: Self.symlinkFileType, in: parent)
    }

    /// A device node, FIFO or socket.
    public func addSpecialFile(_ path: String, _ kind: Ext4SpecialFile, metadata: Ext4EntryMetadata) throws {
        try checkOpen(path)
        try check(metadata, path: path)
        var inode: Ext4WriterInode
        let fileType: UInt8
        switch kind {
        case .characterDevice(let major, let minor), .blockDevice(let major, let minor):
            guard major < 4096, minor < (1 << 20) else {
                throw WispError.invalidArgument("\(path): device number \(major):\(minor) is outside Linux's 12-bit major, 20-bit minor")
            }
            let isCharacter = if case .characterDevice = kind { true } else { false }
            inode = Ext4WriterInode(mode: isCharacter ? Ext4WriterInode.characterDeviceType : Ext4WriterInode.blockDeviceType,
                                    metadata: metadata)
            fileType = isCharacter ? Self.characterDeviceFileType : Self.blockDeviceFileType
            // The kernel's choice: the old 8:8 form in i_block[0] when it fits, else the
            // new form in i_block[1] (minor's low byte, major, minor's high bits).
            if major < 256 && minor < 256 {
                inode.iBlock.putLE32(major << 8 | minor, at: 0)
            } else {
                inode.iBlock.putLE32((minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12), at: 4)
            }
        case .fifo:
            inode = Ext4WriterInode(mode: Ext4WriterInode.fifoType, metadata: metadata)
            fileType = Self.fifoFileType
        case .socket:
            inode = Ext4WriterInode(mode: Ext4WriterInode.socketType, metadata: metadata)
            fileType = Self.socketFileType
        }
        let attributes = try Ext4WriterXattrs.split(try Ext4WriterXattrs.entries(metadata.xattrs, path: path), path: path)
        let (parent, name) = try newEntry(path)
        let number = try allocateInode(for: path)
        try finishInode(&inode, number: number, extents: nil, dataBlocks: 0, attributes: attributes, path: path)
        link(number, name: name, fileType: fileType, in: parent)
    }

    /// A second name for the non-directory at `target` (a path added earlier).
    public func addHardLink(_ path: String, target: String) throws {
        try checkOpen(path)
        let targetComponents = try Self.components(target)
        guard let existing = try lookup(targetComponents) else {
            throw WispError.invalidArgument("\(path): hard link target \(target) does not exist in the image")
        }
        guard existing.fileType != Self.directoryFileType else {
            throw WispError.invalidArgument("\(path): hard link target \(target) is a directory")
        }
        let links = linkCounts[existing.inode] ?? 1
        guard links < Self.maxLinks else {
            throw WispError.invalidArgument("\(path): \(target) already has \(links) links, ext4's limit")
        }
        let (parent, name) = try newEntry(path)
        directories[parent]?.children[name] = existing
        linkCounts[existing.inode] = links + 1
    }

    /// Takes `path` out of the image (with everything below it, for a directory): what an
    /// OCI whiteout does. Its blocks are freed; its inode number is not reused.
    public func remove(_ path: String) throws {
        try checkOpen(path)
        let components = try Self.components(path)
        guard let last = components.last else {
            throw WispError.invalidArgument("\(path): the root directory cannot be removed")
        }
        let parent = try existingDirectory(Array(components.dropLast()), path: path)
        guard let child = directories[parent]?.children[last] else {
            throw WispError.notFound("\(path): no such entry in the image")
        }
        unlink(name: last, child: child, from: parent)
    }

    /// Empties the directory at `path`, keeping it: an OCI opaque whiteout.
    public func removeChildren(of path: String) throws {
        try checkOpen(path)
        let directory = try existingDirectory(try Self.components(path), path: path)
        for (name, child) in directories[directory]?.children ?? [:] {
            unlink(name: name, child: child, from: directory)
        }
    }

    /// Whether `path` names an entry already in the image.
    public func contains(_ path: String) throws -> Bool {
        try lookup(try Self.components(path)) != nil
    }

    // MARK: Helpers

    /// Splits a path into names: empty and "." components are dropped; "..", NUL and
    /// names over 255 bytes are refused.
    static func components(_ path: String) throws -> [Ext4WriterName] {
        // Split on the byte, not on Characters: a combining mark after "/" would
        // otherwise hide the separator inside a name.
        var result: [Ext4WriterName] = []
        for part in path.utf8.split(separator: 0x2F, omittingEmptySubsequences: true) {
            if part.elementsEqual([0x2E]) { continue }
            guard !part.elementsEqual([0x2E, 0x2E]) else {
                throw WispError.invalidArgument("\(path): paths in an ext4 image may not contain \"..\"")
            }
            guard !part.contains(0) else {
                throw WispError.invalidArgument("\(path): a name contains a NUL byte")
            }
            guard part.count <= 255 else {
                throw WispError.invalidArgument("\(path): a name of \(part.count) bytes is longer than ext4's 255")
            }
            result.append(Ext4WriterName(String(decoding: part, as: UTF8.self)))
        }
        return result
    }

    func check(_ metadata: Ext4EntryMetadata, path: String) throws {
        guard metadata.permissions <= 0o7777 else {
            throw WispError.invalidArgument("\(path): permissions 0o\(String(metadata.permissions, radix: 8)) have bits beyond 0o7777")
        }
        try Ext4WriterInode.checkTime(metadata.accessTime, "access time", path: path)
        try Ext4WriterInode.checkTime(metadata.modificationTime, "modification time", path: path)
        try Ext4WriterInode.checkTime(metadata.changeTime, "change time", path: path)
        try Ext4WriterInode.checkTime(metadata.creationTime, "creation time", path: path)
    }

    private func updateImplicitDirectory(_ number: UInt32, metadata: Ext4EntryMetadata, path: String) throws {
        guard let directory = directories[number] else { return }
        guard !directory.explicit else {
            throw WispError.invalidArgument("\(path): the directory was already added")
        }
        _ = try Ext4WriterXattrs.split(try Ext4WriterXattrs.entries(metadata.xattrs, path: path), path: path)
        directories[number]?.metadata = metadata
        directories[number]?.explicit = true
    }

    /// The directory that will hold `path`'s last component (made, with its missing
    /// ancestors, if needed) and that name; refuses a name already there.
    private func newEntry(_ path: String) throws -> (parent: UInt32, name: Ext4WriterName) {
        let components = try Self.components(path)
        guard let last = components.last else {
            throw WispError.invalidArgument("\(path): names the root directory, which already exists")
        }
        let parent = try parentDirectory(components, path: path)
        guard directories[parent]?.children[last] == nil else {
            throw WispError.invalidArgument("\(path): already exists in the image")
        }
        return (parent, last)
    }

    private func parentDirectory(_ components: [Ext4WriterName], path: String) throws -> UInt32 {
        var current = Self.rootInode
        for name in components.dropLast() {
            if let child = directories[current]?.children[name] {
                guard child.fileType == Self.directoryFileType else {
                    throw WispError.invalidArgument("\(path): \(name) is not a directory in the image")
                }
                current = child.inode
                continue
            }
            let number = try allocateInode(for: path)
            let metadata = Ext4EntryMetadata(permissions: 0o755, modificationTime: options.timestamp)
            directories[number] = Directory(name: name, parent: current, metadata: metadata, explicit: false)
            directories[current]?.children[name] = Child(inode: number, fileType: Self.directoryFileType)
            directories[current]?.subdirectories += 1
            setLive(number, true)
            current = number
        }
        return current
    }

    private func existingDirectory(_ components: [Ext4WriterName], path: String) throws -> UInt32 {
        var current = Self.rootInode
        for name in components {
            guard let child = directories[current]?.children[name] else {
                throw WispError.notFound("\(path): \(name) does not exist in the image")
            }
            guard child.fileType == Self.directoryFileType else {
                throw WispError.invalidArgument("\(path): \(name) is not a directory in the image")
            }
            current = child.inode
        }
        return current
    }

    func lookup(_ components: [Ext4WriterName]) throws -> Child? {
        guard let last = components.last else { return Child(inode: Self.rootInode, fileType: Self.directoryFileType) }
        var current = Self.rootInode
        for name in components.dropLast() {
            guard let child = directories[current]?.children[name], child.fileType == Self.directoryFileType else {
                return nil
            }
            current = child.inode
        }
        return directories[current]?.children[last]
    }

    private func link(_ number: UInt32, name: Ext4WriterName, fileType: UInt8, in parent: UInt32) {
        directories[parent]?.children[name] = Child(inode: number, fileType: fileType)
        setLive(number, true)
    }

    /// Drops one name; an inode left with no names (and a directory's whole subtree,
    /// walked without recursion) stops being live.
    private func unlink(name: Ext4WriterName, child: Child, from parent: UInt32) {
        directories[parent]?.children[name] = nil
        guard child.fileType == Self.directoryFileType else {
            let links = (linkCounts[child.inode] ?? 1) - 1
            if links == 0 {
                linkCounts[child.inode] = nil
                setLive(child.inode, false)
                removed.append(child.inode)
            } else {
                linkCounts[child.inode] = links
            }
            return
        }
        directories[parent]?.subdirectories -= 1
        var pending = [child.inode]
        while let directory = pending.popLast() {
            for (childName, grandchild) in directories[directory]?.children ?? [:] {
                if grandchild.fileType == Self.directoryFileType {
                    pending.append(grandchild.inode)
                } else {
                    unlink(name: childName, child: grandchild, from: directory)
                }
            }
            directories[directory] = nil
            setLive(directory, false)
            removed.append(directory)
        }
    }

    /// Attributes, extent tree and the inode itself, written to its table slot.
    func finishInode(_ inode: inout Ext4WriterInode, number: UInt32, extents: [Ext4WriterExtent]?, dataBlocks: UInt64,
                     attributes: (inode: [Ext4XattrEntry], block: [Ext4XattrEntry]), path: String) throws {
        var blocks = dataBlocks
        if let extents {
            let tree = try extentTree(extents, owner: number, what: path)
            inode.flags |= Self.extentsFlag
            inode.iBlock = tree.iBlock
            blocks += UInt64(tree.nodes.count)
        }
        inode.inlineXattrs = Ext4WriterXattrs.inodeArea(attributes.inode)
        if !attributes.block.isEmpty {
            let block = try allocator.allocate(1, owner: number, what: path)[0].lowerBound
            let bytes = Ext4WriterXattrs.block(attributes.block, blockNumber: block, filesystemSeed: filesystemSeed)
            try failing { try data.write(bytes, at: block * UInt64(Ext4WriterGeometry.blockSize)) }
            inode.fileACL = block
            blocks += 1
        }
        inode.sectors = blocks * UInt64(Ext4WriterGeometry.blockSize / 512)
        try writeInodeSlot(number, inode.encoded(number: number, filesystemSeed: filesystemSeed))
    }
}
