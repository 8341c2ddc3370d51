import WispCore

/// A content digest as the OCI specs write it: `sha256:<64 lowercase hex>`. Only sha256 is
/// accepted: it is what every registry and tool produces, and an algorithm Wisp cannot
/// verify must not be trusted.
public struct OCIDigest: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
    /// 64 lowercase hex digits.
    public let hex: String

    public init(_ text: String) throws {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw WispError(.corrupt, "\(Self.clip(text)) is not a digest (expected sha256:<64 hex digits>)")
        }
        guard parts[0] == "sha256" else {
            throw WispError(.unsupported, "digest \(Self.clip(text)): only sha256 digests are supported")
        }
        let hex = parts[1]
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            throw WispError(.corrupt, "\(Self.clip(text)) is not a digest (expected sha256:<64 lowercase hex digits>)")
        }
        self.hex = String(hex)
    }

    init(trustedHex: String) { hex = trustedHex }

    public var description: String { "sha256:\(hex)" }

    public init(from decoder: Decoder) throws {
        try self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public static func < (a: OCIDigest, b: OCIDigest) -> Bool { a.hex < b.hex }

    /// Hostile text goes into messages only in part.
    static func clip(_ text: String) -> String {
        text.count <= 80 ? text : String(text.prefix(80)) + "…"
    }
}
