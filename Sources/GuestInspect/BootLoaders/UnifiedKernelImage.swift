import WispCore

/// A unified kernel image in the guest, read section by section so that listing entries
/// never loads the whole (often 50+ MiB) file.
public struct UnifiedKernelImage: Sendable {
    public var path: String
    public var pe: PEImage

    static let headLimit = 64 << 10

    public static func open(inspector: GuestInspector, path: String) throws -> UnifiedKernelImage {
        let size = try inspector.guestFileSize(path)
        let headCount = Int(min(size, UInt64(headLimit)))
        let head = try inspector.readGuestFile(path, offset: 0, count: headCount)
        // Section offsets are checked against the whole file, not just the head.
        let pe = try PEImage(headers: head, fileSize: size, source: path)
        guard pe.section(named: ".linux") != nil else {
            throw WispError.corrupt(path, "unified kernel image", "has no .linux section")
        }
        return UnifiedKernelImage(path: path, pe: pe)
    }

    public func sectionBytes(_ name: String, inspector: GuestInspector, limit: Int) throws -> [UInt8] {
        guard let s = pe.section(named: name) else {
            throw WispError.notFound("\(path): no \(name) section")
        }
        guard s.size <= limit else {
            throw WispError.corrupt(path, "unified kernel image section \(name)", at: UInt64(s.fileOffset), "\(s.size) bytes is over the \(limit)-byte limit")
        }
        return try inspector.readGuestFile(path, offset: UInt64(s.fileOffset), count: s.size)
    }

    public func sectionText(_ name: String, inspector: GuestInspector) -> String? {
        guard pe.section(named: name) != nil, let raw = try? sectionBytes(name, inspector: inspector, limit: 1 << 20) else { return nil }
        return String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self).trimmingWhitespace()
    }
}
