/// One-call form of `AtomicOutput` for small files (state, keys, configuration).
extension AtomicOutput {
    public static func write(_ bytes: [UInt8], to path: String, permissions: UInt32 = 0o644) throws {
        let output = try AtomicOutput(path: path, permissions: permissions, expectedSize: UInt64(bytes.count))
        if !bytes.isEmpty {
            try bytes.withUnsafeBytes { try output.file.write($0, at: 0) }
        }
        try output.commit()
    }

    /// Copies `source` to `path` atomically (a firmware variable store, a template): a full
    /// disk is a `.noSpace` error naming `path`, and leaves nothing.
    public static func copy(from source: String, to path: String, permissions: UInt32 = 0o644) throws {
        let input = try PosixFile(path: source, mode: .readOnly)
        defer { input.close() }
        let size = try input.size()
        let output = try AtomicOutput(path: path, permissions: permissions, expectedSize: size)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: UInt64 = 0
        while offset < size {
            let n = Int(min(UInt64(buffer.count), size - offset))
            try buffer.withUnsafeMutableBytes { try input.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), at: offset) }
            try buffer.withUnsafeBytes { try output.file.write(UnsafeRawBufferPointer(rebasing: $0[0..<n]), at: offset) }
            offset += UInt64(n)
        }
        try output.commit()
    }
}
