/// The directory-entry hashes htree directories are ordered by (e2fsprogs `ext2fs_dirhash`,
/// the kernel's `ext4fs_dirhash`): half-MD4 and TEA over the name packed into words,
/// starting from the superblock's hash seed. "Signed" variants read name bytes as signed
/// chars, which is what x86 kernels did and what `s_flags` records for these images.
struct Ext4WriterDirectoryHash: Sendable {
    let version: Ext4HashVersion
    let seed: (UInt32, UInt32, UInt32, UInt32)
    let signedChars: Bool

    /// `seedBytes` are the 16 bytes of s_hash_seed; all zeros means the default seed.
    init(version: Ext4HashVersion, seedBytes: [UInt8], signedChars: Bool = true) {
        self.version = version
        self.signedChars = signedChars
        func word(_ i: Int) -> UInt32 {
            UInt32(seedBytes[4 * i]) | UInt32(seedBytes[4 * i + 1]) << 8
                | UInt32(seedBytes[4 * i + 2]) << 16 | UInt32(seedBytes[4 * i + 3]) << 24
        }
        if seedBytes.count == 16, seedBytes.contains(where: { $0 != 0 }) {
            seed = (word(0), word(1), word(2), word(3))
        } else {
            seed = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476)
        }
    }

    /// (major hash with its low bit clear, minor hash).
    func hash(_ name: [UInt8]) -> (major: UInt32, minor: UInt32) {
        var buf = [seed.0, seed.1, seed.2, seed.3]
        var position = 0
        var remaining = name.count
        switch version {
        case .halfMD4:
            while remaining > 0 {
                let input = packed(name, from: position, length: remaining, words: 8)
                Self.halfMD4(&buf, input)
                remaining -= 32
                position += 32
            }
            return (buf[1] & ~1, buf[2])
        case .tea:
            while remaining > 0 {
                let input = packed(name, from: position, length: remaining, words: 4)
                Self.tea(&buf, input)
                remaining -= 16
                position += 16
            }
            return (buf[0] & ~1, buf[1])
        }
    }

    /// `str2hashbuf`: up to `words * 4` bytes from `from`, big-end first within each
    /// word, padded with a pattern made of the remaining length.
    private func packed(_ name: [UInt8], from start: Int, length: Int, words: Int) -> [UInt32] {
        var pad = UInt32(truncatingIfNeeded: length) | UInt32(truncatingIfNeeded: length) << 8
        pad |= pad << 16
        var value = pad
        var out: [UInt32] = []
        out.reserveCapacity(words)
        let count = min(length, words * 4)
        for i in 0..<count {
            let byte = name[start + i]
            let c = signedChars ? UInt32(bitPattern: Int32(Int8(bitPattern: byte))) : UInt32(byte)
            value = c &+ (value << 8)
            if i % 4 == 3 {
                out.append(value)
                value = pad
            }
        }
        if out.count < words { out.append(value) }
        while out.count < words { out.append(pad) }
        return out
    }

    private static func rotl(_ x: UInt32, _ s: UInt32) -> UInt32 { (x << s) | (x >> (32 - s)) }

    private static func halfMD4(_ buf: inout [UInt32], _ x: [UInt32]) {
        var a = buf[0], b = buf[1], c = buf[2], d = buf[3]
        func f(_ x: UInt32, _ y: UInt32, _ z: UInt32) -> UInt32 { z ^ (x & (y ^ z)) }
        func g(_ x: UInt32, _ y: UInt32, _ z: UInt32) -> UInt32 { (x & y) &+ ((x ^ y) & z) }
        func h(_ x: UInt32, _ y: UInt32, _ z: UInt32) -> UInt32 { x ^ y ^ z }
        let k2: UInt32 = 0x5A82_7999, k3: UInt32 = 0x6ED9_EBA1
        a = rotl(a &+ f(b, c, d) &+ x[0], 3); d = rotl(d &+ f(a, b, c) &+ x[1], 7)
        c = rotl(c &+ f(d, a, b) &+ x[2], 11); b = rotl(b &+ f(c, d, a) &+ x[3], 19)
        a = rotl(a &+ f(b, c, d) &+ x[4], 3); d = rotl(d &+ f(a, b, c) &+ x[5], 7)
        c = rotl(c &+ f(d, a, b) &+ x[6], 11); b = rotl(b &+ f(c, d, a) &+ x[7], 19)

        a = rotl(a &+ g(b, c, d) &+ x[1] &+ k2, 3); d = rotl(d &+ g(a, b, c) &+ x[3] &+ k2, 5)
        c = rotl(c &+ g(d, a, b) &+ x[5] &+ k2, 9); b = rotl(b &+ g(c, d, a) &+ x[7] &+ k2, 13)
        a = rotl(a &+ g(b, c, d) &+ x[0] &+ k2, 3); d = rotl(d &+ g(a, b, c) &+ x[2] &+ k2, 5)
        c = rotl(c &+ g(d, a, b) &+ x[4] &+ k2, 9); b = rotl(b &+ g(c, d, a) &+ x[6] &+ k2, 13)

        a = rotl(a &+ h(b, c, d) &+ x[3] &+ k3, 3); d = rotl(d &+ h(a, b, c) &+ x[7] &+ k3, 9)
        c = rotl(c &+ h(d, a, b) &+ x[2] &+ k3, 11); b = rotl(b &+ h(c, d, a) &+ x[6] &+ k3, 15)
        a = rotl(a &+ h(b, c, d) &+ x[1] &+ k3, 3); d = rotl(d &+ h(a, b, c) &+ x[5] &+ k3, 9)
        c = rotl(c &+ h(d, a, b) &+ x[0] &+ k3, 11); b = rotl(b &+ h(c, d, a) &+ x[4] &+ k3, 15)

        buf[0] &+= a; buf[1] &+= b; buf[2] &+= c; buf[3] &+= d
    }

    private static func tea(_ buf: inout [UInt32], _ x: [UInt32]) {
        var sum: UInt32 = 0
        var b0 = buf[0], b1 = buf[1]
        let a = x[0], b = x[1], c = x[2], d = x[3]
        for _ in 0..<16 {
            sum &+= 0x9E37_79B9
            b0 &+= ((b1 << 4) &+ a) ^ (b1 &+ sum) ^ ((b1 >> 5) &+ b)
            b1 &+= ((b0 << 4) &+ c) ^ (b0 &+ sum) ^ ((b0 >> 5) &+ d)
        }
        buf[0] &+= b0
        buf[1] &+= b1
    }
}
