import WispCore

/// A stored layer blob read as its uncompressed tar stream, hashed on the way so its
/// diff_id is known once the stream has been read to its end, and bounded in size (see
/// `LayerDecompressor`).
final class LayerStream {
    let source: String
    private let file: PosixFile
    private let fileSize: UInt64
    private var fileOffset: UInt64 = 0
    private var input: [UInt8]
    private var inputCount = 0
    private var inputConsumed = 0
    private var decompressor: LayerDecompressor
    private let digester = SHA256Digester()
    private var ended = false
    /// Zeros served after the real end, never hashed: see `read(into:)`.
    private var trailer: UInt64?

    init(path: String, compression: LayerCompression, limit: UInt64, source: String) throws {
        self.source = source
        file = try PosixFile(path: path, mode: .readOnly)
        fileSize = try file.size()
        var head = [UInt8](repeating: 0, count: 1 << 20)
        let first = Int(min(UInt64(head.count), fileSize))
        try head.withUnsafeMutableBytes { [file] in try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<first]), at: 0) }
        decompressor = try head.withUnsafeBytes {
            try LayerDecompressor(compression: compression, firstBytes: UnsafeRawBufferPointer(rebasing: $0[0..<first]), limit: limit, source: source)
        }
        input = head
        inputCount = first
        fileOffset = UInt64(first)
    }

    deinit { file.close() }

    /// Uncompressed bytes into `buffer`; 0 only at the end of the stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while !ended {
            if inputConsumed == inputCount, fileOffset < fileSize {
                let n = Int(min(UInt64(input.count), fileSize - fileOffset))
                try input.withUnsafeMutableBytes { try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), at: fileOffset) }
                fileOffset += UInt64(n)
                inputCount = n
                inputConsumed = 0
            }
            let made = try input.withUnsafeBytes { raw in
                try decompressor.step(UnsafeRawBufferPointer(rebasing: raw[0..<inputCount]), consumed: &inputConsumed, into: buffer)
            }
            if made > 0 {
                digester.update(UnsafeRawBufferPointer(rebasing: buffer[0..<made]))
                return made
            }
            if inputConsumed == inputCount && fileOffset >= fileSize {
                try decompressor.finish()
                ended = true
            }
        }
        // umoci 0.4.7 writes layers that stop right after the last file's data, without
        // the padding to 512 bytes and the two zero blocks that end a tar; umoci and Go's
        // tar reader accept them, so they are completed here for libarchive. A well-formed
        // tar ends before this is reached; the diff_id covers only the real bytes.
        if trailer == nil {
            let produced = decompressor.produced
            trailer = (512 - produced % 512) % 512 + 1024
        }
        guard let remaining = trailer, remaining > 0, !buffer.isEmpty else { return 0 }
        let n = Int(min(UInt64(buffer.count), remaining))
        buffer.baseAddress?.initializeMemory(as: UInt8.self, repeating: 0, count: n)
        trailer = remaining - UInt64(n)
        return n
    }

    /// Reads whatever is left (a tar's trailing blocks count towards the diff_id) and
    /// returns the digest of the whole uncompressed stream.
    func finishDigest() throws -> OCIDigest {
        var scratch = [UInt8](repeating: 0, count: 1 << 16)
        while try scratch.withUnsafeMutableBytes({ try read(into: $0) }) > 0 {}
        return digester.finalize()
    }
}
