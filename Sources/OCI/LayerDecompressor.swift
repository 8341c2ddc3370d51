import CZlib
import CZstd
import WispCore

/// Streaming gzip/zstd decompression of a layer, with a bound on the total output: layer
/// blobs are hostile, and the uncompressed size of a layer is declared nowhere (its
/// diff_id is a digest, not a size), so a bomb is stopped at `limit` bytes.
final class LayerDecompressor {
    enum Codec { case none, gzip, zstd }

    let codec: Codec
    let limit: UInt64
    let source: String
    private(set) var produced: UInt64 = 0
    private var zstream = z_stream()
    private var zlibReady = false
    private var zlibMemberEnded = false
    private var dctx: OpaquePointer?
    private var zstdFrameOpen = false
    private var sawInput = false

    /// `compression` `.detect` reads the first bytes of `firstBytes`.
    init(compression: LayerCompression, firstBytes: UnsafeRawBufferPointer, limit: UInt64, source: String) throws {
        self.limit = limit
        self.source = source
        switch compression {
        case .uncompressed: codec = .none
        case .gzip: codec = .gzip
        case .zstd: codec = .zstd
        case .detect:
            if firstBytes.count >= 2, firstBytes[0] == 0x1f, firstBytes[1] == 0x8b {
                codec = .gzip
            } else if firstBytes.count >= 4, firstBytes[0] == 0x28, firstBytes[1] == 0xb5, firstBytes[2] == 0x2f, firstBytes[3] == 0xfd {
                codec = .zstd
            } else {
                codec = .none
            }
        }
        switch codec {
        case .gzip:
            let rc = inflateInit2_(&zstream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
            guard rc == Z_OK else { throw WispError(.failed, "\(source): zlib inflateInit failed (\(rc))") }
            zlibReady = true
        case .zstd:
            guard let context = ZSTD_createDCtx() else { throw WispError(.failed, "\(source): ZSTD_createDCtx failed") }
            dctx = context
        case .none:
            break
        }
    }

    deinit {
        if zlibReady { inflateEnd(&zstream) }
        if let dctx { ZSTD_freeDCtx(dctx) }
    }

    /// Decompresses from `input[consumed...]` into `output`, advancing `consumed`; returns
    /// the bytes produced (0 with input left means the codec needs more input).
    func step(_ input: UnsafeRawBufferPointer, consumed: inout Int, into output: UnsafeMutableRawBufferPointer) throws -> Int {
        guard consumed < input.count || codec != .none else { return 0 }
        if consumed < input.count { sawInput = true }
        var made = 0
        switch codec {
        case .none:
            made = min(input.count - consumed, output.count)
            if made > 0, let from = input.baseAddress, let to = output.baseAddress {
                to.copyMemory(from: from + consumed, byteCount: made)
            }
            consumed += made
        case .gzip:
            if zlibMemberEnded {
                // Another gzip member may follow (multi-member streams are valid gzip).
                guard consumed < input.count else { return 0 }
                guard input[consumed] == 0x1f else {
                    throw WispError.corrupt(source, "gzip stream", at: nil, "data after the end of the compressed stream")
                }
                inflateReset(&zstream)
                zlibMemberEnded = false
            }
            zstream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.advanced(by: consumed).assumingMemoryBound(to: Bytef.self))
            zstream.avail_in = uInt(input.count - consumed)
            zstream.next_out = output.baseAddress?.assumingMemoryBound(to: Bytef.self)
            zstream.avail_out = uInt(output.count)
            let rc = inflate(&zstream, Z_NO_FLUSH)
            made = output.count - Int(zstream.avail_out)
            consumed = input.count - Int(zstream.avail_in)
            if rc == Z_STREAM_END {
                zlibMemberEnded = true
            } else if rc != Z_OK && !(rc == Z_BUF_ERROR && made == 0) {
                let message = zstream.msg.map { String(cString: $0) } ?? "error \(rc)"
                throw WispError.corrupt(source, "gzip stream", "\(message) after \(produced + UInt64(made)) uncompressed bytes")
            }
        case .zstd:
            var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: consumed)
            var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
            let rc = ZSTD_decompressStream(dctx, &outBuffer, &inBuffer)
            if ZSTD_isError(rc) != 0 {
                let name = String(cString: ZSTD_getErrorName(rc))
                throw WispError.corrupt(source, "zstd stream", "\(name) after \(produced) uncompressed bytes")
            }
            // rc is 0 exactly when a frame has been decoded and flushed; a call that moved
            // nothing says nothing (after a frame, it asks for the next frame's header).
            if inBuffer.pos != consumed || outBuffer.pos > 0 { zstdFrameOpen = rc != 0 }
            made = outBuffer.pos
            consumed = inBuffer.pos
        }
        produced += UInt64(made)
        if produced > limit {
            throw WispError.corrupt(source, "layer", "expands to more than \(limit) bytes (a decompression bomb, or a layer too large for its compressed size)")
        }
        return made
    }

    /// Called at the end of the input: a stream cut short is an error.
    func finish() throws {
        switch codec {
        case .none: break
        case .gzip:
            guard zlibMemberEnded || !sawInput else {
                throw WispError.corrupt(source, "gzip stream", "truncated: the input ended inside the compressed stream")
            }
            if !sawInput { throw WispError.corrupt(source, "gzip stream", "empty") }
        case .zstd:
            guard !zstdFrameOpen, sawInput else {
                throw WispError.corrupt(source, "zstd stream", sawInput ? "truncated: the input ended inside a frame" : "empty")
            }
        }
    }
}
