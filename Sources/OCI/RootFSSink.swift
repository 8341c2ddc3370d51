import WispCore
/// Consumes the merged root filesystem in pass 2 of `MergedRootFS.emit(into:)`, in this
/// order, which a filesystem writer can follow without holding contents:
///
/// 1. every directory, parents before children (the root first, as the empty path);
/// 2. every regular file once, with its contents streaming from its layer (layers bottom
///    up, each in tar order);
/// 3. symlinks and special files;
/// 4. hard links: extra names of a file, symlink or special file emitted before.
///
/// A sink that throws stops the emission; the error is passed on unchanged. `links` is the
/// number of names the inode has (1, or more when `hardLink` calls for it follow), so a
/// writer can fill in its link count when it writes the inode.
public protocol RootFSSink {
    mutating func directory(_ path: RootFSPath, metadata: RootFSMetadata) throws
    /// `contents` is valid only during this call; whatever the sink does not read is skipped.
    mutating func file(_ path: RootFSPath, metadata: RootFSMetadata, size: UInt64, links: Int, contents: RootFSFileContents) throws
    mutating func symlink(_ path: RootFSPath, target: [UInt8], metadata: RootFSMetadata, links: Int) throws
    mutating func special(_ path: RootFSPath, kind: RootFSSpecialFile, metadata: RootFSMetadata, links: Int) throws
    /// `path` is another name of the inode first emitted at `target`.
    mutating func hardLink(_ path: RootFSPath, target: RootFSPath) throws
}

/// A regular file's contents as they stream out of its layer: blocks at increasing
/// offsets; the gaps between blocks (and up to `size` after the last) are holes of a
/// sparse file and read as zeros.
public final class RootFSFileContents {
    let reader: LayerTarReader
    public let size: UInt64
    var valid = true

    init(reader: LayerTarReader, size: UInt64) {
        self.reader = reader
        self.size = size
    }

    /// The next block of data, or nil at the end. The bytes are valid until the next call.
    public func nextBlock() throws -> (offset: UInt64, bytes: UnsafeRawBufferPointer)? {
        guard valid else {
            throw WispError(.invalidArgument, "a layer file's contents were read after its file() call returned; read them inside the sink's file()")
        }
        return try reader.nextDataBlock(declaredSize: size)
    }

    /// Calls `body` with every block in order.
    public func forEachBlock(_ body: (UInt64, UnsafeRawBufferPointer) throws -> Void) throws {
        while let block = try nextBlock() { try body(block.offset, block.bytes) }
    }
}
