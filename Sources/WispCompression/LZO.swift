import WispCore

/// LZO1X decompression (the format btrfs writes with lzo1x_1_compress, segment by
/// segment). Every read and write is bounds-checked: a hostile stream ends in an error,
/// never past either buffer, and output never exceeds `limit`.
public enum LZO {
    /// Decompresses one complete LZO1X stream (ending in the 0x11 0x00 0x00 marker) that
    /// must fill `input` exactly.
    public static func decompress(_ input: [UInt8], limit: Int, context: String) throws -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(min(limit, max(256, input.count * 3)))
        var ip = 0
        let end = input.count

        func fail(_ detail: String) -> WispError {
            WispError.corrupt(context, "LZO1X stream", at: UInt64(ip), detail)
        }
        func byte() throws -> Int {
            guard ip < end else { throw fail("input ends early") }
            defer { ip += 1 }
            return Int(input[ip])
        }
        func literals(_ count: Int) throws {
            guard count <= end - ip else { throw fail("a run of \(count) literals runs past the input") }
            guard count <= limit - output.count else { throw fail("output exceeds the limit of \(limit) bytes") }
            output.append(contentsOf: input[ip..<(ip + count)])
            ip += count
        }
        func copyMatch(distance: Int, length: Int) throws {
            guard distance >= 1, distance <= output.count else {
                throw fail("match distance \(distance) reaches before the start of the output (\(output.count) bytes)")
            }
            guard length <= limit - output.count else { throw fail("output exceeds the limit of \(limit) bytes") }
            var from = output.count - distance
            for _ in 0..<length {
                output.append(output[from])
                from += 1
            }
        }
        /// A run of zero bytes extends a length field by 255 each, then one byte adds on.
        func extendedLength(_ base: Int) throws -> Int {
            var zeros = 0
            while true {
                guard ip < end else { throw fail("length run ends early") }
                if input[ip] != 0 { break }
                ip += 1
                zeros += 1
                guard zeros <= limit / 255 + 1 else { throw fail("length run longer than any output") }
            }
            return zeros * 255 + base + (try byte())
        }

        guard end >= 3 else { throw fail("stream of \(end) bytes is shorter than the end marker") }
        var state = 0
        var next = 0
        // The first instruction may be a literal run of (byte - 17).
        if input[0] > 17 {
            ip = 1
            let t = Int(input[0]) - 17
            if t < 4 {
                try literals(t)
                state = t
            } else {
                try literals(t)
                state = 4
            }
        }
        while true {
            let t = try byte()
            var length: Int
            var distance: Int
            if t < 16 {
                if state == 0 {
                    let run = (t == 0 ? try extendedLength(15) : t) + 3
                    try literals(run)
                    state = 4
                    continue
                } else if state != 4 {
                    next = t & 3
                    distance = 1 + (t >> 2) + (try byte() << 2)
                    length = 2
                } else {
                    next = t & 3
                    distance = 1 + 0x800 + (t >> 2) + (try byte() << 2)
                    length = 3
                }
            } else if t >= 64 {
                next = t & 3
                distance = 1 + ((t >> 2) & 7) + (try byte() << 3)
                length = (t >> 5) + 1
            } else if t >= 32 {
                length = t & 31
                if length == 0 { length = try extendedLength(31) }
                length += 2
                let low = try byte(), high = try byte()
                let word = low | high << 8
                distance = 1 + (word >> 2)
                next = word & 3
            } else {
                length = t & 7
                if length == 0 { length = try extendedLength(7) }
                length += 2
                let low = try byte(), high = try byte()
                let word = low | high << 8
                let far = (t & 8) << 11 + (word >> 2)
                if far == 0 {
                    // End of stream: the marker is 0x11 0x00 0x00.
                    guard length == 3 else { throw fail("end marker with length \(length)") }
                    guard ip == end else { throw fail("\(end - ip) bytes follow the end marker") }
                    return output
                }
                distance = far + 0x4000
                next = word & 3
            }
            try copyMatch(distance: distance, length: length)
            state = next
            try literals(next)
        }
    }
}
