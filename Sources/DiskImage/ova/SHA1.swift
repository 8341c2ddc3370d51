/// SHA-1, for OVA manifests written by older tools (`SHA1(disk.vmdk)= ...`). Verification
/// only: a digest that must match what the archive claims, not a security boundary on its
/// own (the archive could carry any manifest it likes).
struct SHA1 {
    private var h: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)
    private var pending: [UInt8] = []
    private var length: UInt64 = 0

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        length &+= UInt64(bytes.count)
        var i = 0
        if !pending.isEmpty {
            let take = min(64 - pending.count, bytes.count)
            pending += bytes[0..<take]
            i = take
            if pending.count == 64 { pending.withUnsafeBytes { block($0) }; pending.removeAll(keepingCapacity: true) }
        }
        while i + 64 <= bytes.count { block(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + 64)])); i += 64 }
        if i < bytes.count { pending += bytes[i...] }
    }

    mutating func finalize() -> [UInt8] {
        let bits = length &* 8
        var tail = pending + [0x80]
        while tail.count % 64 != 56 { tail.append(0) }
        for s in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bits >> UInt64(s))) }
        tail.withUnsafeBytes { t in
            for k in stride(from: 0, to: t.count, by: 64) { block(UnsafeRawBufferPointer(rebasing: t[k..<(k + 64)])) }
        }
        var out: [UInt8] = []
        for v in [h.0, h.1, h.2, h.3, h.4] { for s in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) } }
        return out
    }

    private mutating func block(_ b: UnsafeRawBufferPointer) {
        var w = [UInt32](repeating: 0, count: 80)
        for t in 0..<16 {
            w[t] = UInt32(b[t * 4]) << 24 | UInt32(b[t * 4 + 1]) << 16 | UInt32(b[t * 4 + 2]) << 8 | UInt32(b[t * 4 + 3])
        }
        for t in 16..<80 {
            let x = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]
            w[t] = x << 1 | x >> 31
        }
        var (a, bb, c, d, e) = h
        for t in 0..<80 {
            let f: UInt32, k: UInt32
            switch t {
            case 0..<20: f = (bb & c) | (~bb & d); k = 0x5A827999
            case 20..<40: f = bb ^ c ^ d; k = 0x6ED9EBA1
            case 40..<60: f = (bb & c) | (bb & d) | (c & d); k = 0x8F1BBCDC
            default: f = bb ^ c ^ d; k = 0xCA62C1D6
            }
            let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[t]
            e = d; d = c; c = bb << 30 | bb >> 2; bb = a; a = temp
        }
        h = (h.0 &+ a, h.1 &+ bb, h.2 &+ c, h.3 &+ d, h.4 &+ e)
    }
}
