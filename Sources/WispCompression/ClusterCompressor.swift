import CZlib
import CZstd
import WispCore

/// Compresses many same-sized blocks (qcow2 clusters) one after another, reusing one
/// zlib or zstd context instead of setting one up per block. One instance per worker
/// thread: it is deliberately not Sendable.
///
/// Deflate output uses QEMU's exact parameters (raw deflate, 4 KiB window, level 6,
/// memLevel 9): QEMU inflates qcow2 clusters with a 4 KiB window, so a larger window
/// would produce clusters QEMU cannot read.
public final class ClusterCompressor {
    public enum Kind: Sendable { case deflate, zstd }

    private let kind: Kind
    private var stream = z_stream()
    private var zstdContext: OpaquePointer?
    private var output: [UInt8] = []

    public init(kind: Kind, zstdLevel: Int32 = 3) throws {
        self.kind = kind
        switch kind {
        case .deflate:
            let rc = deflateInit2_(&stream, 6, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                                   Int32(MemoryLayout<z_stream>.size))
            guard rc == Z_OK else { throw WispError(.failed, "zlib deflateInit2 failed (\(rc))") }
        case .zstd:
            guard let ctx = ZSTD_createCCtx() else { throw WispError(.failed, "ZSTD_createCCtx failed") }
            zstdContext = ctx
            _ = ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, zstdLevel)
        }
    }

    deinit {
        switch kind {
        case .deflate: deflateEnd(&stream)
        case .zstd: if let zstdContext { ZSTD_freeCCtx(zstdContext) }
        }
    }

    /// Compressed bytes of `input`, or nil when they would not be smaller than `limit`
    /// (the caller then stores the block uncompressed, as QEMU does).
    public func compress(_ input: UnsafeRawBufferPointer, limit: Int) throws -> [UInt8]? {
        if output.count < limit { output = [UInt8](repeating: 0, count: limit) }
        switch kind {
        case .deflate:
            deflateReset(&stream)
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(input.count)
            let (rc, produced) = output.withUnsafeMutableBytes { buf -> (Int32, Int) in
                stream.next_out = buf.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(limit)
                let rc = CZlib.deflate(&stream, Z_FINISH)
                return (rc, limit - Int(stream.avail_out))
            }
            guard rc == Z_STREAM_END else { return nil }  // ran out of room: incompressible
            return Array(output[0..<produced])
        case .zstd:
            guard let ctx = zstdContext else { return nil }
            let written = output.withUnsafeMutableBytes { buf in
                ZSTD_compress2(ctx, buf.baseAddress, limit, input.baseAddress, input.count)
            }
            if ZSTD_isError(written) != 0 {
                if ZSTD_getErrorCode(written) == ZSTD_error_dstSize_tooSmall { return nil }
                throw WispError(.failed, "zstd compression failed: \(String(cString: ZSTD_getErrorName(written)))")
            }
            guard written < limit else { return nil }
            return Array(output[0..<written])
        }
    }
}
