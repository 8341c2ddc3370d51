import WispCompression
import WispCore

/// What a kernel file is, read from its own headers (x86 boot protocol, arm64 Image header,
/// EFI zboot wrapper, gzip): enough to decide whether QEMU's `-kernel` can take it as is.
public struct KernelFacts: Sendable, Codable, Equatable {
    /// "x86_64", "x86", "arm64", "riscv64", "loongarch64", or "unknown".
    public var architecture: String
    /// The guest architecture the kernel runs (nil for 32-bit x86 and unknown kernels).
    public var guestArchitecture: GuestArchitecture?
    /// "bzImage", "zImage", "arm64 Image", "gzip arm64 Image", "EFI zboot (gzip)", "EFI zboot (zstd)",
    /// "unified kernel image", "unknown".
    public var format: String
    /// The `Linux version ...` banner or the x86 header's version string.
    public var versionString: String?
    /// x86 boot protocol, e.g. "2.15".
    public var bootProtocol: String?
    public var relocatable: Bool?
    /// x86: XLF_KERNEL_64 (a 64-bit entry point) is set. (Named so the JSON key reads
    /// `has-entry64-bit`, with no number inside a word.)
    public var hasEntry64Bit: Bool?
    /// The compression around the kernel proper ("gzip", "zstd"), nil when it is bare.
    public var compression: String?
    /// arm64 Image header: text_offset, image_size (bytes the kernel occupies once loaded,
    /// BSS included) and flags (bit 0 big endian, bits 1-2 page size, bit 3 placement).
    public var textOffset: UInt64?
    public var imageSize: UInt64?
    public var imageFlags: UInt64?
    /// QEMU `-kernel` boots it without firmware.
    public var qemuDirectBoot: Bool
    public var note: String?

    public init(architecture: String, format: String, versionString: String? = nil, bootProtocol: String? = nil,
                relocatable: Bool? = nil, hasEntry64Bit: Bool? = nil, qemuDirectBoot: Bool, note: String? = nil) {
        self.architecture = architecture
        self.guestArchitecture = GuestArchitecture(kernelName: architecture)
        self.format = format
        self.versionString = versionString
        self.bootProtocol = bootProtocol
        self.relocatable = relocatable
        self.hasEntry64Bit = hasEntry64Bit
        self.qemuDirectBoot = qemuDirectBoot
        self.note = note
    }
}

public enum KernelImage {
    /// Largest decompressed kernel we unwrap (arm64 Images are ~40 MiB).
    public static let decompressionLimit = 192 << 20
    /// Bytes of the head that settle x86 and arm64 headers without reading the whole file.
    public static let headLength = 64 << 10

    /// True if the first bytes alone decide the facts (x86 bzImage, plain arm64 Image);
    /// otherwise `facts` wants the whole file (gzip, zboot: to unwrap and find the banner).
    public static func needsWholeFile(head: [UInt8]) -> Bool {
        if isBzImage(head) { return false }
        if head.count >= 0x40, Array(head[0x38..<0x3c]) == armMagic { return false }
        return true
    }

    static let armMagic: [UInt8] = [0x41, 0x52, 0x4d, 0x64]  // "ARM\x64"
    static let riscvMagic: [UInt8] = Array("RSC\u{05}".utf8)

    static func isBzImage(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 0x206 && Array(bytes[0x202..<0x206]) == Array("HdrS".utf8)
    }

    /// Reads the facts from `bytes` (the whole file, or its head when `needsWholeFile` says
    /// the head suffices). `source` names the file in errors.
    public static func facts(_ bytes: [UInt8], source: String) throws -> KernelFacts {
        if isBzImage(bytes) { return try x86Facts(bytes, source: source) }
        if bytes.count >= 2, bytes[0] == 0x4d, bytes[1] == 0x5a {  // "MZ"
            if bytes.count >= 8, Array(bytes[4..<8]) == Array("zimg".utf8) {
                return try zbootFacts(bytes, source: source)
            }
            if bytes.count >= 0x40, Array(bytes[0x38..<0x3c]) == armMagic {
                return armFacts(bytes, format: "arm64 Image")
            }
            if let pe = try? PEImage(bytes, source: source), pe.section(named: ".linux") != nil {
                return KernelFacts(architecture: pe.architecture, format: "unified kernel image",
                                   versionString: pe.sectionText(".uname", bytes: bytes),
                                   qemuDirectBoot: false,
                                   note: "a UKI: extract its .linux and .initrd sections to boot it directly")
            }
        }
        if bytes.count >= 0x40, Array(bytes[0x38..<0x3c]) == armMagic {
            return armFacts(bytes, format: "arm64 Image")
        }
        if bytes.count >= 0x40, Array(bytes[0x30..<0x34]) == riscvMagic {
            // Named so an image is refused by architecture; Wisp has no riscv64 board.
            return KernelFacts(architecture: "riscv64", format: "riscv Image", versionString: banner(in: bytes),
                               qemuDirectBoot: true)
        }
        if bytes.count >= 2, bytes[0] == 0x1f, bytes[1] == 0x8b {
            let inner = try Deflate.inflate(bytes, framing: .gzip, limit: decompressionLimit,
                                            context: "\(source): gzip-compressed kernel")
            var facts = try self.facts(inner, source: source)
            facts.format = "gzip " + facts.format
            facts.compression = "gzip"
            // QEMU's arm loader gunzips Images itself; other formats stay as they are.
            facts.qemuDirectBoot = facts.architecture == "arm64"
            return facts
        }
        return KernelFacts(architecture: "unknown", format: "unknown", versionString: banner(in: bytes),
                           qemuDirectBoot: false, note: "no x86 setup header, arm64 Image header or EFI zboot wrapper found")
    }

    /// x86 boot protocol (Documentation/arch/x86/boot.rst): setup header at 0x1f1.
    static func x86Facts(_ bytes: [UInt8], source: String) throws -> KernelFacts {
        let r = ByteReader(bytes, source: source, structure: "x86 setup header")
        let protocolVersion = try r.u16le(0x206)
        let major = protocolVersion >> 8, minor = protocolVersion & 0xff
        var version: String?
        let versionOffset = try r.u16le(0x20e)
        if protocolVersion >= 0x200, versionOffset != 0 {
            let at = Int(versionOffset) + 0x200
            if at < bytes.count {
                let s = try r.cString(at, maxLength: min(256, bytes.count - at))
                version = s.isEmpty ? nil : s
            }
        }
        let loadflags = protocolVersion >= 0x200 ? try r.u8(0x211) : 0
        let relocatable: Bool? = protocolVersion >= 0x205 ? (try r.u8(0x234)) != 0 : nil
        let xloadflags: UInt16? = protocolVersion >= 0x20c ? try r.u16le(0x236) : nil
        let has64 = xloadflags.map { $0 & 0x1 != 0 }
        let bzImage = loadflags & 0x01 != 0  // LOADED_HIGH
        return KernelFacts(architecture: has64 == true ? "x86_64" : "x86",
                           format: bzImage ? "bzImage" : "zImage", versionString: version,
                           bootProtocol: "\(major).\(minor < 10 ? "0" : "")\(minor)",
                           relocatable: relocatable, hasEntry64Bit: has64,
                           qemuDirectBoot: protocolVersion >= 0x200,
                           note: protocolVersion < 0x200 ? "boot protocol older than 2.00" : nil)
    }

    /// arm64 Image header (Documentation/arch/arm64/booting.rst): code0/code1, then
    /// text_offset, image_size and flags as little-endian u64 at 8, 16 and 24, magic at 0x38.
    static func armFacts(_ bytes: [UInt8], format: String) -> KernelFacts {
        var facts = KernelFacts(architecture: "arm64", format: format, versionString: banner(in: bytes), qemuDirectBoot: true)
        let r = ByteReader(bytes, source: "arm64 Image", structure: "arm64 Image header")
        facts.textOffset = try? r.u64le(8)
        facts.imageSize = try? r.u64le(16)
        facts.imageFlags = try? r.u64le(24)
        if let flags = facts.imageFlags, flags & 1 != 0 {
            facts.note = "a big-endian arm64 kernel: Wisp's aarch64 board runs little-endian guests"
        }
        return facts
    }

    /// EFI zboot (drivers/firmware/efi/libstub/zboot-header.S): "MZ\0\0" "zimg", payload
    /// offset and size, two reserved words, the compression name at 0x18.
    static func zbootFacts(_ bytes: [UInt8], source: String) throws -> KernelFacts {
        let (method, inner) = try unwrapZboot(bytes, source: source)
        var facts = try self.facts(inner, source: source)
        facts.format = "EFI zboot (\(method))"
        facts.compression = method
        // QEMU unpacks gzip zboot for arm64 since 7.2, not zstd; the unwrapped Image boots.
        facts.qemuDirectBoot = method == "gzip"
        if method != "gzip" { facts.note = "QEMU -kernel needs the unwrapped Image (wisp kernel extract --decompress; wisp run does it itself)" }
        return facts
    }

    /// The compression method and the decompressed kernel inside an EFI zboot image.
    public static func unwrapZboot(_ bytes: [UInt8], source: String) throws -> (method: String, kernel: [UInt8]) {
        let r = ByteReader(bytes, source: source, structure: "EFI zboot header")
        let offset = Int(try r.u32le(8)), size = Int(try r.u32le(12))
        let method = try r.cString(0x18, maxLength: 32)
        guard offset <= bytes.count, size <= bytes.count - offset, size > 0 else {
            throw r.error(at: 8, "payload \(offset)+\(size) lies outside the \(bytes.count)-byte file")
        }
        let payload = Array(bytes[offset..<(offset + size)])
        switch method {
        case "gzip":
            return (method, try Deflate.inflate(payload, framing: .gzip, limit: decompressionLimit,
                                                context: "\(source): EFI zboot gzip payload"))
        case "zstd", "zstd22":
            return ("zstd", try Zstd.decompress(payload, limit: decompressionLimit,
                                                context: "\(source): EFI zboot zstd payload"))
        default:
            // lzma, xz, lzo and lz4 zboot kernels exist; Wisp has no decoder for them yet.
            throw WispError.unsupported(source, "EFI zboot payload compressed with \"\(method)\" (gzip and zstd are supported)")
        }
    }

    /// The bare Image inside a gzip-compressed arm64 kernel, nil if the gzip holds something else.
    public static func gunzipArm64Image(_ bytes: [UInt8], source: String) throws -> [UInt8]? {
        let inner = try Deflate.inflate(bytes, framing: .gzip, limit: decompressionLimit,
                                        context: "\(source): gzip-compressed kernel")
        guard inner.count >= 0x40, Array(inner[0x38..<0x3c]) == armMagic else { return nil }
        return inner
    }

    /// The kernel's own "Linux version ..." banner, if present uncompressed in `bytes`.
    static func banner(in bytes: [UInt8]) -> String? {
        let needle = Array("Linux version ".utf8)
        guard bytes.count > needle.count else { return nil }
        var i = 0
        let last = bytes.count - needle.count
        while i <= last {
            if bytes[i] == needle[0], Array(bytes[i..<(i + needle.count)]) == needle {
                // The banner format string "%s version %s" also exists; the real one has a digit.
                let start = i + needle.count
                if start < bytes.count, bytes[start] >= 48, bytes[start] <= 57 {
                    var end = start
                    while end < bytes.count, end - start < 512, bytes[end] != 0, bytes[end] != 10 { end += 1 }
                    return "Linux version " + String(decoding: bytes[start..<end], as: UTF8.self)
                }
            }
            i += 1
        }
        return nil
    }
}
