#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The error vocabulary shared by every layer.
///
/// Two audiences read an error. People read `message`: one sentence they can act on, naming
/// the source (a file, or a device inside one), the structure, the offset and what was
/// expected. Code reads `kind` (and `errno`, `exitStatus`, `cause`): branching on the
/// message text is never done, so messages can be improved without breaking callers.
/// Parsers throw these on hostile input instead of trapping.
public struct WispError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, coarse enough to be stable and fine enough to branch on.
    public enum Kind: String, Sendable, Equatable, Codable, CaseIterable {
        /// On-disk bytes violate the format (bad magic, checksum, offset out of range, ...).
        case corrupt
        /// Valid input that uses a feature Wisp does not implement.
        case unsupported
        /// An operating system call failed (`errno` says which way).
        case io
        /// A value the user typed on the command line is malformed or out of range (a size, a
        /// port, a digest, a name): a usage error, exit status 64.
        case usage
        /// The request does not fit the input it names (reading a directory as a file, a
        /// limit exceeded): exit status 1, like any failure.
        case invalidArgument
        /// A file, path, instance or entry does not exist.
        case notFound
        /// Something that must not exist already does.
        case alreadyExists
        /// A resource is held by someone else (a lock, a port).
        case busy
        /// The operation may not touch this resource (a policy refusal, EACCES, EPERM).
        case permissionDenied
        /// A deadline passed; whatever was waited for may still be going on.
        case timedOut
        /// The peer closed a connection or stream before the answer was complete.
        case connectionClosed
        /// A child process (QEMU, ssh-keygen, ...) ran and exited unsuccessfully
        /// (`exitStatus` holds its status, 128+N for signal N).
        case processFailed
        /// Downloaded or stored bytes do not have the digest they must have.
        case digestMismatch
        /// The engine (QEMU) refused or failed a request while running.
        case engineFailed
        /// The guest did something that ends the operation (crashed, powered off).
        case guestFailed
        /// A step of a larger operation failed for a reason none of the above names.
        case failed
        /// The filesystem that was to hold an output is full (ENOSPC or EDQUOT, or found
        /// too small before writing): the message names the path and the space needed, and
        /// no partial output was kept.
        case noSpace
    }

    public var kind: Kind
    public var message: String
    /// The `errno` of the system call behind an `.io` error.
    public var errno: Int32?
    /// The exit status of the child process behind a `.processFailed` error.
    public var exitStatus: Int32?
    /// The lower-level error this one was raised from, if any (kept for logs and for code
    /// that wants to look deeper; its message is usually already part of `message`).
    public var cause: (any Error & Sendable)?

    public init(_ kind: Kind, _ message: String, errno: Int32? = nil, exitStatus: Int32? = nil,
                cause: (any Error & Sendable)? = nil) {
        self.kind = kind
        self.message = message
        self.errno = errno
        self.exitStatus = exitStatus
        self.cause = cause
    }

    public var description: String { message }

    /// Equal when kind, message and the numeric details agree; causes are not compared.
    public static func == (a: WispError, b: WispError) -> Bool {
        a.kind == b.kind && a.message == b.message && a.errno == b.errno && a.exitStatus == b.exitStatus
    }

    /// The same error with `context` put in front of its message ("context: message") and
    /// everything else kept: how a caller says where a lower layer's error happened.
    public func prefixed(_ context: String) -> WispError {
        var copy = self
        copy.message = "\(context): \(message)"
        return copy
    }

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

    public static func usage(_ detail: String) -> WispError {
        WispError(.usage, detail)
    }

    public static func notFound(_ detail: String) -> WispError {
        WispError(.notFound, detail)
    }

    public static func timedOut(_ detail: String) -> WispError {
        WispError(.timedOut, detail)
    }

    /// Builds an I/O error from an `errno` value, keeping the number for callers. A full
    /// filesystem (ENOSPC, EDQUOT) becomes `.noSpace`, still naming the path.
    public static func posix(_ operation: String, _ path: String, errno code: Int32) -> WispError {
        if code == ENOSPC || code == EDQUOT {
            return WispError(.noSpace, "\(path): \(operation) failed: the filesystem holding it is full (\(String(cString: strerror(code))))", errno: code)
        }
        return WispError(.io, "\(path): \(operation) failed: \(String(cString: strerror(code)))", errno: code)
    }

    /// A child process that exited with `status` (128+N for signal N).
    public static func processFailed(_ detail: String, status: Int32) -> WispError {
        WispError(.processFailed, detail, exitStatus: status)
    }
}
