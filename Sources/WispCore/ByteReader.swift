/// Bounds-checked decoding of on-disk structures. Every read names the structure and the
/// absolute offset of the field on failure, so a truncated or hostile header produces
/// "disk.qcow2: qcow2 header at offset 72: needs 8 bytes, 4 remain" instead of a trap.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    /// Where `bytes[0]` lives in the source, for error messages.
    public let baseOffset: UInt64
    public let source: String
    public let structure: String

    public init(_ bytes: [UInt8], source: String, structure: String, baseOffset: UInt64 = 0) {
        self.bytes = bytes
        self.source = source
        self.structure = structure
        self.baseOffset = baseOffset
    }

    public var count: Int { bytes.count }

    @inline(__always)
    private func check(_ offset: Int, _ width: Int) throws {
        guard offset >= 0, width >= 0, offset <= bytes.count, width <= bytes.count - offset else {
            throw WispError.corrupt(source, structure, at: baseOffset &+ UInt64(max(offset, 0)),
                                    "needs \(width) bytes, \(max(0, bytes.count - max(offset, 0))) remain")
        }
    }

    public func u8(_ offset: Int) throws -> UInt8 {
        try check(offset, 1)
        return bytes[offset]
    }

    public func u16le(_ offset: Int) throws -> UInt16 {
        try check(offset, 2)
        return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    public func u32le(_ offset: Int) throws -> UInt32 {
        try check(offset, 4)
        return bytes.loadLE32(offset)
    }

    public func u64le(_ offset: Int) throws -> UInt64 {
        try check(offset, 8)
        return UInt64(bytes.loadLE32(offset)) | UInt64(bytes.loadLE32(offset + 4)) << 32
    }

    public func u16be(_ offset: Int) throws -> UInt16 {
        try check(offset, 2)
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    public func u32be(_ offset: Int) throws -> UInt32 {
        try check(offset, 4)
        return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16
            | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    public func u64be(_ offset: Int) throws -> UInt64 {
        try check(offset, 8)
        return UInt64(try u32be(offset)) << 32 | UInt64(try u32be(offset + 4))
    }

    public func slice(_ offset: Int, _ length: Int) throws -> ArraySlice<UInt8> {
        try check(offset, length)
        return bytes[offset..<(offset + length)]
    }

    public func array(_ offset: Int, _ length: Int) throws -> [UInt8] {
        Array(try slice(offset, length))
    }

    /// A sub-reader for a nested structure; offsets in errors stay absolute.
    public func sub(_ offset: Int, _ length: Int, structure: String? = nil) throws -> ByteReader {
        ByteReader(try array(offset, length), source: source, structure: structure ?? self.structure,
                   baseOffset: baseOffset &+ UInt64(offset))
    }

    /// Bytes up to the first NUL (or `length`), decoded as UTF-8 with replacement.
    public func cString(_ offset: Int, maxLength length: Int) throws -> String {
        let raw = try slice(offset, length)
        let end = raw.firstIndex(of: 0) ?? raw.endIndex
        return String(decoding: raw[raw.startIndex..<end], as: UTF8.self)
    }

    /// An error at `offset` in this structure.
    public func error(at offset: Int, _ detail: String) -> WispError {
        WispError.corrupt(source, structure, at: baseOffset &+ UInt64(max(offset, 0)), detail)
    }
}

extension Array where Element == UInt8 {
    @inline(__always)
    func loadLE32(_ offset: Int) -> UInt32 {
        UInt32(self[offset]) | UInt32(self[offset + 1]) << 8 | UInt32(self[offset + 2]) << 16
            | UInt32(self[offset + 3]) << 24
    }
}

/// Little/big-endian encoders for writers.
extension Array where Element == UInt8 {
    public mutating func putLE16(_ value: UInt16, at offset: Int) {
        self[offset] = UInt8(truncatingIfNeeded: value)
        self[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
    }
    public mutating func putLE32(_ value: UInt32, at offset: Int) {
        for i in 0..<4 { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
    }
    public mutating func putLE64(_ value: UInt64, at offset: Int) {
        for i in 0..<8 { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }
    public mutating func putBE16(_ value: UInt16, at offset: Int) {
        self[offset] = UInt8(truncatingIfNeeded: value >> 8)
        self[offset + 1] = UInt8(truncatingIfNeeded: value)
    }
    public mutating func putBE32(_ value: UInt32, at offset: Int) {
        for i in 0..<4 { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(3 - i))) }
    }
    public mutating func putBE64(_ value: UInt64, at offset: Int) {
        for i in 0..<8 { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(7 - i))) }
    }
}
