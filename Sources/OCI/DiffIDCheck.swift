import WispCore

/// Decompresses a layer blob as it arrives and hashes the result, so the blob store can
/// refuse a layer whose uncompressed digest is not its diff_id before it is kept.
final class DiffIDCheck {
    let expected: OCIDigest
    let compression: LayerCompression
    let limit: UInt64
    let source: String
    private var decompressor: LayerDecompressor?
    private var digester = SHA256Digester()
    private var head: [UInt8] = []
    private var scratch = [UInt8](repeating: 0, count: 1 << 18)

    init(expected: OCIDigest, compression: LayerCompression, limit: UInt64, source: String) {
        self.expected = expected
        self.compression = compression
        self.limit = limit
        self.source = source
    }

    func observe(_ bytes: UnsafeRawBufferPointer) throws {
        if decompressor == nil {
            // Enough bytes to tell gzip and zstd apart before starting.
            head += bytes
            guard head.count >= 4 else { return }
            let first = head
            head = []
            decompressor = try first.withUnsafeBytes { try LayerDecompressor(compression: compression, firstBytes: $0, limit: limit, source: source) }
            try first.withUnsafeBytes { try feed($0) }
            return
        }
        try feed(bytes)
    }

    private func feed(_ bytes: UnsafeRawBufferPointer) throws {
        guard let decompressor else { return }
        var consumed = 0
        while true {
            let made = try scratch.withUnsafeMutableBytes { try decompressor.step(bytes, consumed: &consumed, into: $0) }
            if made > 0 {
                scratch.withUnsafeBytes { digester.update(UnsafeRawBufferPointer(rebasing: $0[0..<made])) }
            } else if consumed >= bytes.count {
                return
            }
        }
    }

    func restart() {
        decompressor = nil
        digester = SHA256Digester()
        head = []
    }

    /// Throws `.digestMismatch` naming both digests unless the stream hashed to `expected`.
    func finish() throws {
        if decompressor == nil {
            let first = head
            head = []
            decompressor = try first.withUnsafeBytes { try LayerDecompressor(compression: compression, firstBytes: $0, limit: limit, source: source) }
            try first.withUnsafeBytes { try feed($0) }
        }
        try decompressor?.finish()
        let seen = digester.finalize()
        guard seen == expected else {
            throw WispError(.digestMismatch, "\(source): uncompressed layer expected \(expected) (the config's diff_id), got \(seen) (nothing was cached)")
        }
    }
}
