import Foundation
import WispCore

/// An image index (OCI) or manifest list (Docker): manifests per platform.
public struct OCIIndex: Sendable, Codable {
    public var schemaVersion: Int?
    public var mediaType: String?
    public var manifests: [OCIDescriptor]
    public var annotations: [String: String]?
}

/// An image manifest (OCI or Docker v2 schema 2): a config and layers, bottom first.
public struct OCIManifest: Sendable, Codable {
    public var schemaVersion: Int?
    public var mediaType: String?
    public var config: OCIDescriptor
    public var layers: [OCIDescriptor]
    public var annotations: [String: String]?
}

/// The parts of an image configuration a root filesystem needs.
public struct OCIImageConfig: Sendable, Codable {
    public struct RootFS: Sendable, Codable {
        public var type: String
        public var diff_ids: [OCIDigest]
    }

    public struct Runtime: Sendable, Codable {
        public var User: String?
        public var Env: [String]?
        public var Entrypoint: [String]?
        public var Cmd: [String]?
        public var WorkingDir: String?
        public var Labels: [String: String]?
    }

    public var architecture: String?
    public var os: String?
    public var variant: String?
    /// RFC 3339 creation time, when the image records one.
    public var created: String?
    public var rootfs: RootFS
    public var config: Runtime?
}

/// Manifests, indexes and configs are small JSON documents; anything larger than this is
/// refused before it is read (a hostile registry or archive could otherwise make us hold
/// gigabytes).
public enum OCIDocumentLimits {
    public static let maxDocumentBytes = 4 << 20
    /// Nested indexes (an index pointing at an index) followed at most this deep.
    public static let maxIndexDepth = 4
    /// Layers in one manifest.
    public static let maxLayers = 1000
}

enum OCIJSON {
    /// Decodes a document, naming `source` and the type on failure.
    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], source: String, what: String) throws -> T {
        guard bytes.count <= OCIDocumentLimits.maxDocumentBytes else {
            throw WispError.corrupt(source, what, "\(bytes.count) bytes is more than the \(OCIDocumentLimits.maxDocumentBytes)-byte limit")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch let error as WispError {
            throw error.prefixed("\(source): \(what)")
        } catch {
            throw WispError(.corrupt, "\(source): \(what) is not valid: \(Self.describe(error))")
        }
    }

    private static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing \(path(context.codingPath + [key]))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "wrong type at \(path(context.codingPath))"
        case DecodingError.dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not JSON" : "bad value at \(path(context.codingPath))"
        default:
            return "\(error)"
        }
    }

    private static func path(_ keys: [CodingKey]) -> String {
        keys.isEmpty ? "top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}
