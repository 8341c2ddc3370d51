import GuestInspect
import Testing
import WispCore
import WispTestSupport

/// Mutated and truncated configurations and kernel headers must give errors or results,
/// never a trap: every parser here reads bytes from an untrusted guest.
@Suite struct HostileInputTests {

    static let alphabet = Array("{}[]$'\"\\;\n #=>()-abc01".utf8)

    static func mutations(of base: [UInt8], count: Int, seed: UInt64) -> [[UInt8]] {
        var rng = SplitMix64(state: seed)
        var out: [[UInt8]] = []
        for _ in 0..<count {
            var b = base
            let edits = Int.random(in: 1...8, using: &rng)
            for _ in 0..<edits where !b.isEmpty {
                let at = Int.random(in: 0..<b.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: b[at] = alphabet.randomElement(using: &rng) ?? 0
                case 1: b.remove(at: at)
                case 2: b.insert(alphabet.randomElement(using: &rng) ?? 0, at: at)
                default: b = Array(b.prefix(at))
                }
            }
            out.append(b)
        }
        return out
    }

    @Test func grubScriptsNeverTrap() throws {
        var parsed = 0
        for bytes in Self.mutations(of: Array(ConfigParserTests.debianGrubCfg.utf8), count: 400, seed: 1) {
            let text = String(decoding: bytes, as: UTF8.self)
            guard let statements = try? GrubScriptParser.parse(text, source: "g") else { continue }
            parsed += 1
            if let menu = try? GrubMenu(statements: statements,
                                        context: .init(grubenv: ["saved_entry": "1>0"], fileExists: { _ in true },
                                                       blsEntries: [], prefix: "/boot/grub"), source: "g") {
                _ = menu.resolveDefault()
            }
        }
        // Some mutations stay valid scripts, some do not: both paths ran.
        #expect(parsed > 0 && parsed < 400)
    }

    @Test func blsExtlinuxGrubenvNeverTrap() throws {
        let bls = Array("title x\nversion 6.1\nlinux /vmlinuz-6.1\ninitrd /initrd\noptions root=UUID=x ro $kernelopts\n".utf8)
        for bytes in Self.mutations(of: bls, count: 300, seed: 2) {
            _ = try? BLSEntry.parse(String(decoding: bytes, as: UTF8.self), id: "x", source: "x.conf")
        }
        let ext = Array("DEFAULT virt\nLABEL virt\n MENU LABEL v\n LINUX vmlinuz-virt\n INITRD a,b\n APPEND ro\n".utf8)
        for bytes in Self.mutations(of: ext, count: 300, seed: 3) {
            _ = (try? ExtlinuxConfig.parse(String(decoding: bytes, as: UTF8.self), source: "e"))?.defaultChoice()
        }
        let env = Array("# GRUB Environment Block\nsaved_entry=a\\\\b\nx=1\n####".utf8)
        for bytes in Self.mutations(of: env, count: 300, seed: 4) {
            _ = try? GrubEnvironment.parse(bytes, source: "grubenv")
        }
        let fstab = Array("UUID=a / ext4 defaults 0 1\nLABEL=b\\040c /boot ext4 x 0 2\n".utf8)
        for bytes in Self.mutations(of: fstab, count: 300, seed: 5) {
            _ = try? FstabEntry.parse(String(decoding: bytes, as: UTF8.self), source: "fstab")
        }
    }

    @Test func kernelHeadersNeverTrap() throws {
        var rng = SplitMix64(state: 6)
        let bz = FakeKernel.bzImage(version: "6.1.0", size: 4096)
        let uki = FakeKernel.uki(sections: [(".linux", bz), (".cmdline", Array("ro".utf8))])
        let zboot = FakeKernel.zboot(payload: [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3], method: "gzip")
        for base in [bz, uki, zboot] {
            for _ in 0..<300 {
                var b = base
                // Corrupt header fields where the parsers look: offsets, sizes, counts.
                for _ in 0..<Int.random(in: 1...6, using: &rng) {
                    let at = Int.random(in: 0..<min(b.count, 0x400), using: &rng)
                    b[at] = UInt8.random(in: 0...255, using: &rng)
                }
                if Bool.random(using: &rng) { b = Array(b.prefix(Int.random(in: 0..<b.count, using: &rng))) }
                _ = try? KernelImage.facts(b, source: "k")
                _ = try? PEImage(b, source: "k")
                _ = try? KernelImage.unwrapZboot(b, source: "k")
            }
        }
    }
}
