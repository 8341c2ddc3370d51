import CZlib
import WispCore

/// zlib-framed deflate of many blocks one after another with one reused context, always
/// producing output (deflateBound room), even for incompressible blocks: VMDK
/// stream-optimized grains are compressed without exception. One instance per thread.
public final class ZlibCompressor {
    private var stream = z_stream()
    private var output: [UInt8] = []

    public init(level: Int32 = 6) throws {
        let rc = deflateInit2_(&stream, level, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                               Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { throw WispError(.failed, "zlib deflateInit2 failed (\(rc))") }
    }

    deinit { deflateEnd(&stream) }

    /// The zlib stream of `input`.
    public func compress(_ input: UnsafeRawBufferPointer) throws -> ArraySlice<UInt8> {
        deflateReset(&stream)
        let bound = Int(deflateBound(&stream, uLong(input.count))) + 16
        if output.count < bound { output = [UInt8](repeating: 0, count: bound) }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        let (rc, produced) = output.withUnsafeMutableBytes { buf -> (Int32, Int) in
            stream.next_out = buf.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(bound)
            let rc = CZlib.deflate(&stream, Z_FINISH)
            return (rc, bound - Int(stream.avail_out))
        }
        guard rc == Z_STREAM_END else { throw WispError(.failed, "zlib deflate failed (\(rc))") }
        return output[0..<produced]
    }
}
