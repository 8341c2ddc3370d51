/// The error vocabulary shared by every layer. Each error is one sentence a user can act on:
/// it names the source (a file, or a device inside one), the structure, the offset and what
/// was expected. Parsers throw these on hostile input instead of trapping.
public struct WispError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// On-disk bytes violate the format (bad magic, checksum, offset out of range, ...).
        case corrupt
        /// Valid input that uses a feature Wisp does not implement.
        case unsupported
        /// An operating system call failed.
        case io
        /// The user asked for something that makes no sense.
        case invalidArgument
        /// A file, path, instance or entry does not exist.
        case notFound
        /// Something that must not exist already does.
        case alreadyExists
        /// A resource is held by someone else (a lock, a port).
        case busy
        /// A step of a larger operation failed (a child process, a timeout).
        case failed
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// `source: structure at offset N: detail` — the shape every parser error takes.
    public static func corrupt(_ source: String, _ structure: String, at offset: UInt64? = nil,
                               _ detail: String) -> WispError {
        if let offset {
            return WispError(.corrupt, "\(source): \(structure) at offset \(offset): \(detail)")
        }
        return WispError(.corrupt, "\(source): \(structure): \(detail)")
    }

    public static func unsupported(_ source: String, _ detail: String) -> WispError {
        WispError(.unsupported, "\(source): \(detail)")
    }

    public static func invalidArgument(_ detail: String) -> WispError {
        WispError(.invalidArgument, detail)
    }

    public static func notFound(_ detail: String) -> WispError {
        WispError(.notFound, detail)
    }

    /// Builds an I/O error from the current `errno`.
    public static func posix(_ operation: String, _ path: String, errno code: Int32) -> WispError {
        WispError(.io, "\(path): \(operation) failed: \(String(cString: strerror(code)))")
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
