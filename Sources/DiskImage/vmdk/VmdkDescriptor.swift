import WispCore

/// A VMDK descriptor: the text that says which extents (files or zero ranges) make up the
/// disk, in order, and which parent a snapshot reads through. It stands alone as the
/// `.vmdk` file of split and flat images, or is embedded in a monolithic sparse extent.
///
/// Parsed as hostile text: size-capped, at most `maxExtents` extents, quotes required
/// where VMware writes them, no arithmetic that can overflow.
public struct VmdkDescriptor: Sendable, Equatable {
    /// Descriptors are a few hundred bytes; twoGbMaxExtent images of a 64 TiB disk name
    /// about 32,000 extents, well under these.
    public static let maxSize = 1 << 20
    public static let maxExtents = 65_536

    public enum Access: String, Sendable, Equatable { case rw = "RW", rdonly = "RDONLY", noaccess = "NOACCESS" }

    public enum ExtentType: String, Sendable, Equatable {
        case flat = "FLAT", sparse = "SPARSE", zero = "ZERO", vmfs = "VMFS", vmfsSparse = "VMFSSPARSE"
        case vmfsRDM = "VMFSRDM", vmfsRaw = "VMFSRAW", seSparse = "SESPARSE"
    }

    public struct Extent: Sendable, Equatable {
        public var access: Access
        /// Length in 512-byte sectors.
        public var sectors: UInt64
        public var type: ExtentType
        /// The file, as written (nil for ZERO).
        public var fileName: String?
        /// FLAT/VMFS: where the extent starts in its file, in sectors.
        public var offsetSectors: UInt64
    }

    public var version: Int = 1
    public var cid: UInt32?
    public var parentCID: UInt32?
    public var createType: String?
    public var parentFileNameHint: String?
    public var extents: [Extent] = []
    /// The `ddb.*` entries, unquoted.
    public var ddb: [String: String] = [:]

    public var virtualSectors: UInt64 {
        extents.reduce(0) { $0 &+ $1.sectors }
    }

    /// `parentCID=ffffffff` (or none) means no parent.
    public var hasParent: Bool { parentFileNameHint != nil && parentCID != 0xFFFF_FFFF }

    public init() {}

    /// Parses descriptor text. `name`: the file, for messages.
    public static func parse(_ bytes: [UInt8], name: String) throws -> VmdkDescriptor {
        guard bytes.count <= maxSize else {
            throw WispError.corrupt(name, "VMDK descriptor", "\(bytes.count) bytes, more than the \(maxSize) Wisp reads")
        }
        // An embedded descriptor is padded with NULs to its sector count.
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        guard let text = String(validating: bytes[0..<end], as: UTF8.self) else {
            throw WispError.corrupt(name, "VMDK descriptor", "is not UTF-8 text")
        }
        var d = VmdkDescriptor()
        var lineNumber = 0
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let context = "VMDK descriptor line \(lineNumber)"
            if let first = line.split(separator: " ", maxSplits: 1).first, Access(rawValue: String(first)) != nil {
                guard d.extents.count < maxExtents else {
                    throw WispError.corrupt(name, context, "more than \(maxExtents) extents")
                }
                d.extents.append(try parseExtent(line, name: name, context: context))
                continue
            }
            guard let eq = line.firstIndex(of: "=") else {
                throw WispError.corrupt(name, context, "\"\(line.prefix(80))\" is neither key=value nor an extent")
            }
            let key = line[..<eq].trimmingWhitespace()
            let value = try unquote(line[line.index(after: eq)...].trimmingWhitespace(), name: name, context: context)
            switch key {
            case "version":
                guard let v = Int(value), (1...3).contains(v) else {
                    throw WispError.unsupported(name, "VMDK descriptor version \(value)")
                }
                d.version = v
            case "CID": d.cid = try parseCID(value, name: name, context: context)
            case "parentCID": d.parentCID = try parseCID(value, name: name, context: context)
            case "createType": d.createType = value
            case "parentFileNameHint": d.parentFileNameHint = value
            default:
                if key.hasPrefix("ddb.") { d.ddb[String(key)] = value }
            }
        }
        return d
    }

    static func parseCID(_ value: String, name: String, context: String) throws -> UInt32 {
        guard value.count <= 8, let cid = UInt32(value, radix: 16) else {
            throw WispError.corrupt(name, context, "CID \"\(value.prefix(40))\" is not a 32-bit hexadecimal number")
        }
        return cid
    }

    static func unquote(_ value: Substring, name: String, context: String) throws -> String {
        if value.hasPrefix("\"") {
            guard value.count >= 2, value.hasSuffix("\"") else {
                throw WispError.corrupt(name, context, "unterminated quote in \(value.prefix(80))")
            }
            return String(value.dropFirst().dropLast())
        }
        return String(value)
    }

    /// `RW 4192256 SPARSE "disk-s001.vmdk"`, `RW 2048 FLAT "disk-flat.vmdk" 0`, `RW 2048 ZERO`.
    static func parseExtent(_ line: Substring, name: String, context: String) throws -> Extent {
        var rest = line[...]
        func token() -> Substring? {
            rest = rest.drop(while: { $0 == " " || $0 == "\t" })
            guard !rest.isEmpty else { return nil }
            if rest.first == "\"" {
                let body = rest.dropFirst()
                guard let close = body.firstIndex(of: "\"") else { return nil }
                let t = rest[rest.startIndex...close]
                rest = rest[rest.index(after: close)...]
                return t
            }
            let stop = rest.firstIndex(where: { $0 == " " || $0 == "\t" }) ?? rest.endIndex
            let t = rest[..<stop]
            rest = rest[stop...]
            return t
        }
        guard let accessToken = token(), let access = Access(rawValue: String(accessToken)),
              let sizeToken = token(), let typeToken = token() else {
            throw WispError.corrupt(name, context, "extent line \"\(line.prefix(80))\" is incomplete")
        }
        guard let sectors = UInt64(sizeToken), sectors > 0, sectors <= (UInt64(1) << 41) else {
            throw WispError.corrupt(name, context, "extent size \"\(sizeToken.prefix(40))\" is not a sector count up to 1 PiB")
        }
        guard let type = ExtentType(rawValue: String(typeToken)) else {
            throw WispError.unsupported(name, "\(context): extent type \"\(typeToken.prefix(40))\"")
        }
        var extent = Extent(access: access, sectors: sectors, type: type, fileName: nil, offsetSectors: 0)
        if type == .zero { return extent }
        guard let fileToken = token() else {
            throw WispError.corrupt(name, context, "\(type.rawValue) extent names no file")
        }
        guard fileToken.count >= 2, fileToken.hasPrefix("\""), fileToken.hasSuffix("\"") else {
            throw WispError.corrupt(name, context, "extent file name must be quoted: \(fileToken.prefix(80))")
        }
        let file = String(fileToken.dropFirst().dropLast())
        guard !file.isEmpty, !file.contains("\0") else {
            throw WispError.corrupt(name, context, "empty extent file name")
        }
        extent.fileName = file
        if let offsetToken = token() {
            guard let offset = UInt64(offsetToken), offset <= (UInt64(1) << 47) else {
                throw WispError.corrupt(name, context, "extent offset \"\(offsetToken.prefix(40))\" is not a sector number")
            }
            extent.offsetSectors = offset
        }
        return extent
    }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let s = firstIndex(where: { !isSpace($0) }), let e = lastIndex(where: { !isSpace($0) }) else { return "" }
        return self[s...e]
    }
}
