/// One-call form of `AtomicOutput` for small files (state, keys, configuration).
extension AtomicOutput {
    public static func write(_ bytes: [UInt8], to path: String, permissions: UInt32 = 0o644) throws {
        let output = try AtomicOutput(path: path, permissions: permissions)
        if !bytes.isEmpty {
            try bytes.withUnsafeBytes { try output.file.write($0, at: 0) }
        }
        try output.commit()
    }
}
