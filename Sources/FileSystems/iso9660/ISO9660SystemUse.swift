import WispCore

/// What a record's System Use Sharing Protocol entries say (SUSP 1.12, RRIP 1.09/1.12):
/// Rock Ridge names (NM), POSIX attributes (PX), device numbers (PN), times (TF), symbolic
/// links (SL), deep-directory relocation (CL, PL, RE), and zisofs compression (ZF, which
/// Wisp does not decompress). Continuation areas (CE) are followed within fixed limits, so
/// a record cannot make the reader loop or allocate without bound.
struct ISO9660SystemUse: Sendable {
    var sharingProtocolSkip: Int?
    var hasRockRidge = false
    var name: String?
    var mode: UInt32?
    var links: UInt32?
    var uid: UInt32?
    var gid: UInt32?
    var deviceMajor: UInt32?
    var deviceMinor: UInt32?
    var modification: Timestamp?
    var access: Timestamp?
    var change: Timestamp?
    var symlinkTarget: String?
    var childLink: UInt32?
    var parentLink: UInt32?
    var isRelocated = false
    var isCompressed = false

    /// Continuation areas followed for one record at most, and their bytes altogether.
    static let maxContinuations = 32
    static let maxBytes = 256 << 10

    /// Parses `record`'s System Use area after skipping `skip` bytes (the SP entry's
    /// LEN_SKP), following CE entries on `device`.
    static func parse(_ record: ISO9660Record, skip: Int, device: any BlockDevice) throws -> ISO9660SystemUse {
        var result = ISO9660SystemUse()
        var areas: [(bytes: [UInt8], offset: UInt64)] = []
        if skip < record.systemUse.count {
            areas.append((Array(record.systemUse[skip...]), record.systemUseOffset + UInt64(skip)))
        }
        var nameBytes: [UInt8] = [], nameContinues = false, sawName = false
        var link = SymlinkBuilder()
        var continuations = 0, totalBytes = 0
        var index = 0
        while index < areas.count {
            let (area, base) = areas[index]
            index += 1
            var position = 0
            while position + 4 <= area.count {
                let signature = (area[position], area[position + 1])
                if signature == (0, 0) { break }  // padding
                let length = Int(area[position + 2])
                let at = base + UInt64(position)
                guard length >= 4, position + length <= area.count else {
                    throw WispError.corrupt(device.name, "Rock Ridge (SUSP) entry", at: at,
                                            "length \(length) does not fit the \(area.count - position) bytes left in the area")
                }
                let body = Array(area[(position + 4)..<(position + length)])
                position += length
                switch signature {
                case (0x53, 0x54):  // ST: end of entries in this area
                    position = area.count
                case (0x53, 0x50):  // SP
                    if body.count >= 3, body[0] == 0xBE, body[1] == 0xEF { result.sharingProtocolSkip = Int(body[2]) }
                case (0x43, 0x45):  // CE
                    guard body.count >= 24 else {
                        throw WispError.corrupt(device.name, "Rock Ridge CE entry", at: at, "\(length) bytes, 28 expected")
                    }
                    continuations += 1
                    let block = UInt64(Self.le32(body, 0)), offset = UInt64(Self.le32(body, 8)), size = Int(Self.le32(body, 16))
                    totalBytes += size
                    guard continuations <= maxContinuations, totalBytes <= maxBytes else {
                        throw WispError.corrupt(device.name, "Rock Ridge CE entry", at: at,
                                                "continuation areas exceed \(maxContinuations) areas or \(maxBytes) bytes for one record")
                    }
                    let start = block * UInt64(ISO9660Reader.sectorSize) + offset
                    try device.checkRange(offset: start, count: UInt64(size), what: "Rock Ridge continuation area named at offset \(at)")
                    areas.append((try device.read(at: start, count: size), start))
                case (0x45, 0x52), (0x52, 0x52):  // ER names the extension; RR lists RRIP 1.09 entries
                    result.hasRockRidge = true
                case (0x4E, 0x4D):  // NM
                    result.hasRockRidge = true
                    guard let flags = body.first else { continue }
                    if flags & 0x06 != 0 { continue }  // "." or "..": not a name
                    if sawName && !nameContinues { continue }  // a second, unrelated NM: Linux keeps the first
                    sawName = true
                    nameBytes += body.dropFirst()
                    nameContinues = flags & 0x01 != 0
                case (0x50, 0x58):  // PX
                    result.hasRockRidge = true
                    guard body.count >= 32 else {
                        throw WispError.corrupt(device.name, "Rock Ridge PX entry", at: at, "\(length) bytes, at least 36 expected")
                    }
                    result.mode = Self.le32(body, 0)
                    result.links = Self.le32(body, 8)
                    result.uid = Self.le32(body, 16)
                    result.gid = Self.le32(body, 24)
                case (0x50, 0x4E):  // PN: high and low device numbers, as Linux splits them
                    guard body.count >= 16 else { continue }
                    let high = Self.le32(body, 0), low = Self.le32(body, 8)
                    if high == 0 {
                        result.deviceMajor = (low >> 8) & 0xFFF
                        result.deviceMinor = (low & 0xFF) | ((low >> 12) & 0xFFF00)
                    } else {
                        result.deviceMajor = high
                        result.deviceMinor = low
                    }
                case (0x54, 0x46):  // TF
                    result.hasRockRidge = true
                    try parseTimes(body, at: at, source: device.name, into: &result)
                case (0x53, 0x4C):  // SL
                    result.hasRockRidge = true
                    try link.add(body, at: at, source: device.name)
                case (0x43, 0x4C):  // CL
                    guard body.count >= 4 else {
                        throw WispError.corrupt(device.name, "Rock Ridge CL entry", at: at, "\(length) bytes, 12 expected")
                    }
                    result.childLink = Self.le32(body, 0)
                case (0x50, 0x4C):  // PL
                    guard body.count >= 4 else {
                        throw WispError.corrupt(device.name, "Rock Ridge PL entry", at: at, "\(length) bytes, 12 expected")
                    }
                    result.parentLink = Self.le32(body, 0)
                case (0x52, 0x45):  // RE
                    result.isRelocated = true
                case (0x5A, 0x46):  // ZF
                    result.isCompressed = true
                default:
                    break
                }
            }
        }
        if sawName { result.name = String(decoding: nameBytes, as: UTF8.self) }
        result.symlinkTarget = link.target
        return result
    }

    static func le32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }

    /// TF: one stamp per flag bit in order creation, modify, access, attributes, backup,
    /// expiration, effective; 17-byte stamps when bit 7 is set.
    static func parseTimes(_ body: [UInt8], at: UInt64, source: String, into result: inout ISO9660SystemUse) throws {
        guard let flags = body.first else { return }
        let width = flags & 0x80 != 0 ? 17 : 7
        var position = 1
        for bit in 0..<7 where flags & (1 << bit) != 0 {
            guard position + width <= body.count else {
                throw WispError.corrupt(source, "Rock Ridge TF entry", at: at, "flags 0x\(String(flags, radix: 16)) name more times than its \(body.count + 4) bytes hold")
            }
            let slice = body[position..<(position + width)]
            let stamp = width == 7 ? ISO9660Date.short(slice) : (ISO9660Date.long(slice) ?? Timestamp(seconds: 0))
            switch bit {
            case 1: result.modification = stamp
            case 2: result.access = stamp
            case 3: result.change = stamp
            default: break
            }
            position += width
        }
    }

    /// SL component records, possibly spread over several SL entries (entry flag 1) and
    /// components split across records (component flag 1).
    struct SymlinkBuilder {
        var components: [String] = []
        var pending: [UInt8]?
        var seen = false
        /// PATH_MAX: a longer target is hostile.
        static let maxLength = 4096

        mutating func add(_ body: [UInt8], at: UInt64, source: String) throws {
            seen = true
            var position = 1  // body[0]: the entry's own flags
            while position + 2 <= body.count {
                let flags = body[position], length = Int(body[position + 1])
                guard position + 2 + length <= body.count else {
                    throw WispError.corrupt(source, "Rock Ridge SL entry", at: at, "a component of \(length) bytes overruns the entry")
                }
                let content = body[(position + 2)..<(position + 2 + length)]
                position += 2 + length
                var piece: [UInt8]
                if flags & 0x02 != 0 { piece = Array(".".utf8) }
                else if flags & 0x04 != 0 { piece = Array("..".utf8) }
                else if flags & 0x08 != 0 { piece = [] ; components = [""] ; pending = nil ; continue }
                else { piece = Array(content) }
                piece = (pending ?? []) + piece
                if flags & 0x01 != 0 {
                    pending = piece
                } else {
                    components.append(String(decoding: piece, as: UTF8.self))
                    pending = nil
                }
                guard components.reduce(0, { $0 + $1.utf8.count + 1 }) + (pending?.count ?? 0) <= Self.maxLength else {
                    throw WispError.corrupt(source, "Rock Ridge SL entry", at: at, "the link target is longer than \(Self.maxLength) bytes")
                }
            }
        }

        var target: String? {
            guard seen else { return nil }
            var parts = components
            if let pending { parts.append(String(decoding: pending, as: UTF8.self)) }
            if parts == [""] { return "/" }
            return parts.joined(separator: "/")
        }
    }
}
