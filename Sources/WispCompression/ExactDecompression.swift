import CZlib
import CZstd
import WispCore

/// Decompression straight into a caller's buffer that must be filled exactly (a qcow2
/// cluster being read into its final place), without an intermediate array. Trailing input
/// after the output is full is ignored: qcow2 rounds compressed clusters up to sectors.
extension Deflate {
    public static func inflateExactly(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                                      context: String) throws {
        var stream = z_stream()
        var rc = inflateInit2_(&stream, Framing.raw.windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { throw WispError(.failed, "\(context): zlib inflateInit failed (\(rc))") }
        defer { inflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        stream.next_out = output.baseAddress?.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(output.count)
        rc = CZlib.inflate(&stream, Z_FINISH)
        guard (rc == Z_STREAM_END || rc == Z_BUF_ERROR || rc == Z_OK) && stream.avail_out == 0 else {
            let message = stream.msg.map { String(cString: $0) } ?? "produced \(output.count - Int(stream.avail_out)) of \(output.count) bytes"
            throw WispError.corrupt(context, "deflate stream", "inflate failed: \(message)")
        }
    }
}

extension Zstd {
    public static func decompressExactly(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                                         context: String) throws {
        guard let dctx = ZSTD_createDCtx() else { throw WispError(.failed, "\(context): ZSTD_createDCtx failed") }
        defer { ZSTD_freeDCtx(dctx) }
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        while outBuffer.pos < outBuffer.size {
            let before = (inBuffer.pos, outBuffer.pos)
            let rc = ZSTD_decompressStream(dctx, &outBuffer, &inBuffer)
            if ZSTD_isError(rc) != 0 {
                throw WispError.corrupt(context, "zstd frame", "decompression failed: \(String(cString: ZSTD_getErrorName(rc)))")
            }
            if before == (inBuffer.pos, outBuffer.pos) {
                throw WispError.corrupt(context, "zstd frame", "produced \(outBuffer.pos) bytes, expected \(output.count)")
            }
        }
    }
}
