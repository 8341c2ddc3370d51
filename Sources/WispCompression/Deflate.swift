import CZlib
import WispCore

/// zlib's deflate/inflate, in the three framings Wisp meets: raw deflate (qcow2 compressed
/// clusters), zlib-wrapped (btrfs), and gzip (compressed kernels and initrds).
public enum Deflate {
    public enum Framing: Sendable {
        case raw, zlib, gzip

        var windowBits: Int32 {
            switch self {
            case .raw: return -15
            case .zlib: return 15
            case .gzip: return 31
            }
        }
    }

    /// Decompresses `input`, producing at most `limit` bytes. With `exactSize`, output must
    /// fill `limit` exactly (a qcow2 cluster). Trailing input after the end of the stream is
    /// ignored, as qcow2 pads compressed clusters to sector boundaries.
    public static func inflate(_ input: UnsafeRawBufferPointer, framing: Framing, limit: Int,
                               exactSize: Bool = false, context: String) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: exactSize ? limit : min(limit, max(4096, input.count * 4)))
        var stream = z_stream()
        var rc = inflateInit2_(&stream, framing.windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { throw WispError(.failed, "\(context): zlib inflateInit failed (\(rc))") }
        defer { inflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        var produced = 0
        while true {
            if produced == output.count {
                if output.count >= limit {
                    if exactSize { break }
                    // Check whether the stream really has more to give.
                    var probe: UInt8 = 0
                    let more = withUnsafeMutablePointer(to: &probe) { p -> Int32 in
                        stream.next_out = p
                        stream.avail_out = 1
                        return CZlib.inflate(&stream, Z_NO_FLUSH)
                    }
                    if stream.avail_out == 0 {
                        throw WispError.corrupt(context, "deflate stream", "expands past the limit of \(limit) bytes")
                    }
                    rc = more
                    break
                }
                output.append(contentsOf: [UInt8](repeating: 0, count: min(limit, output.count * 2) - output.count))
            }
            let room = output.count - produced
            rc = output.withUnsafeMutableBytes { buf -> Int32 in
                stream.next_out = buf.baseAddress!.assumingMemoryBound(to: Bytef.self) + produced
                stream.avail_out = uInt(room)
                return CZlib.inflate(&stream, Z_NO_FLUSH)
            }
            produced = output.count - Int(stream.avail_out)
            if rc == Z_STREAM_END { break }
            if rc == Z_BUF_ERROR && stream.avail_in == 0 {
                // Input exhausted without a stream end: qcow2 writers may stop early
                // (QEMU accepts a full cluster without Z_STREAM_END).
                break
            }
            guard rc == Z_OK || rc == Z_BUF_ERROR else {
                let message = stream.msg.map { String(cString: $0) } ?? "error \(rc)"
                throw WispError.corrupt(context, "deflate stream", "inflate failed: \(message)")
            }
        }
        if exactSize {
            guard produced == limit else {
                throw WispError.corrupt(context, "deflate stream", "produced \(produced) bytes, expected \(limit)")
            }
        } else {
            output.removeSubrange(produced...)
        }
        return output
    }

    public static func inflate(_ input: [UInt8], framing: Framing, limit: Int, exactSize: Bool = false,
                               context: String) throws -> [UInt8] {
        try input.withUnsafeBytes { try inflate($0, framing: framing, limit: limit, exactSize: exactSize, context: context) }
    }

    /// Compresses `input`; returns nil when the result would not be smaller than `input`
    /// (callers then store it uncompressed, as qemu-img does).
    public static func deflate(_ input: UnsafeRawBufferPointer, framing: Framing, level: Int32 = 6) throws -> [UInt8]? {
        var stream = z_stream()
        let rc = deflateInit2_(&stream, level, Z_DEFLATED, framing.windowBits, 9, Z_DEFAULT_STRATEGY,
                               ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { throw WispError(.failed, "zlib deflateInit failed (\(rc))") }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: max(input.count, 64))
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        let result = output.withUnsafeMutableBytes { buf -> Int32 in
            stream.next_out = buf.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(buf.count)
            return CZlib.deflate(&stream, Z_FINISH)
        }
        guard result == Z_STREAM_END else { return nil }  // did not fit: incompressible
        let produced = output.count - Int(stream.avail_out)
        guard produced < input.count else { return nil }
        output.removeSubrange(produced...)
        return output
    }
}
