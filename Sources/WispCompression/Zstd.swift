import CZstd
import WispCore

/// Zstandard frames: qcow2 zstd clusters, btrfs zstd extents, zstd initrds and EFI zboot.
public enum Zstd {
    /// Decompresses the frame(s) in `input`, producing at most `limit` bytes; with
    /// `exactSize` the output must be exactly `limit` bytes.
    public static func decompress(_ input: UnsafeRawBufferPointer, limit: Int, exactSize: Bool = false,
                                  context: String) throws -> [UInt8] {
        guard let dctx = ZSTD_createDCtx() else { throw WispError(.failed, "\(context): ZSTD_createDCtx failed") }
        defer { ZSTD_freeDCtx(dctx) }
        var output = [UInt8](repeating: 0, count: exactSize ? limit : min(limit, max(4096, input.count * 4)))
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var produced = 0
        while true {
            if produced == output.count {
                if output.count >= limit {
                    if exactSize || inBuffer.pos == inBuffer.size { break }
                    // More input may hold only padding or the epilogue: probe for output.
                    var probe: UInt8 = 0
                    let extra = withUnsafeMutablePointer(to: &probe) { p -> Int in
                        var out = ZSTD_outBuffer(dst: p, size: 1, pos: 0)
                        _ = ZSTD_decompressStream(dctx, &out, &inBuffer)
                        return out.pos
                    }
                    if extra > 0 {
                        throw WispError.corrupt(context, "zstd frame", "expands past the limit of \(limit) bytes")
                    }
                    break
                }
                output.append(contentsOf: [UInt8](repeating: 0, count: min(limit, output.count * 2) - output.count))
            }
            let before = inBuffer.pos
            let rc = output.withUnsafeMutableBytes { buf -> Int in
                var out = ZSTD_outBuffer(dst: buf.baseAddress! + produced, size: buf.count - produced, pos: 0)
                let r = ZSTD_decompressStream(dctx, &out, &inBuffer)
                produced += out.pos
                return r
            }
            if ZSTD_isError(rc) != 0 {
                throw WispError.corrupt(context, "zstd frame", "decompression failed: \(String(cString: ZSTD_getErrorName(rc)))")
            }
            if rc == 0 {
                // End of a frame. Stop at input end, or at trailing zero padding.
                if inBuffer.pos == inBuffer.size { break }
                let rest = UnsafeRawBufferPointer(rebasing: input[inBuffer.pos...])
                if rest.allSatisfy({ $0 == 0 }) { break }
                continue
            }
            if inBuffer.pos == inBuffer.size && produced < output.count && inBuffer.pos == before {
                throw WispError.corrupt(context, "zstd frame", "input ends inside a frame")
            }
            if inBuffer.pos == inBuffer.size && produced < output.count {
                continue
            }
        }
        if exactSize {
            guard produced == limit else {
                throw WispError.corrupt(context, "zstd frame", "produced \(produced) bytes, expected \(limit)")
            }
        } else {
            output.removeSubrange(produced...)
        }
        return output
    }

    public static func decompress(_ input: [UInt8], limit: Int, exactSize: Bool = false, context: String) throws -> [UInt8] {
        try input.withUnsafeBytes { try decompress($0, limit: limit, exactSize: exactSize, context: context) }
    }

    /// One zstd frame for `input`, or nil when it would not be smaller.
    public static func compress(_ input: UnsafeRawBufferPointer, level: Int32 = 3) throws -> [UInt8]? {
        let bound = ZSTD_compressBound(input.count)
        var output = [UInt8](repeating: 0, count: bound)
        let written = output.withUnsafeMutableBytes { buf in
            ZSTD_compress(buf.baseAddress, buf.count, input.baseAddress, input.count, level)
        }
        if ZSTD_isError(written) != 0 {
            throw WispError(.failed, "zstd compression failed: \(String(cString: ZSTD_getErrorName(written)))")
        }
        guard written < input.count else { return nil }
        output.removeSubrange(written...)
        return output
    }
}
