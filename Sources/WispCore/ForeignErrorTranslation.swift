import Foundation

/// Turns errors from Foundation and the standard library into `WispError`s with a sentence
/// a person can act on. Their own descriptions are for programmers
/// (`Error Domain=NSCocoaErrorDomain Code=516 "(null)" UserInfo={NSFilePath=...}`,
/// `keyNotFound(CodingKeys(stringValue: ...`) and must not reach users (issue 16).
public enum ForeignErrorTranslation {
    /// The error as a `WispError`: unchanged if it is one, translated if Wisp knows its type,
    /// nil otherwise (the caller decides: ArgumentParser's own errors print themselves).
    public static func wispError(_ error: any Error) -> WispError? {
        if let error = error as? WispError { return error }
        if let error = error as? DecodingError { return WispError(.corrupt, describe(error), cause: error) }
        if let error = error as? CocoaError { return translate(error as NSError, cause: error) }
        if let error = error as? POSIXError { return translate(error as NSError, cause: error) }
        if type(of: error) is NSError.Type, let error = error as? NSError {
            return translate(error, cause: nil)
        }
        return nil
    }

    /// A sentence for any error: a translation when there is one, else its description.
    public static func sentence(_ error: any Error) -> String {
        wispError(error)?.message ?? String(describing: error)
    }

    static func translate(_ error: NSError, cause: (any Error & Sendable)?) -> WispError {
        let path = (error.userInfo[NSFilePathErrorKey] as? String)
            ?? (error.userInfo[NSURLErrorKey] as? URL)?.path
        let subject = path.map { "\($0): " } ?? ""
        var code: Int32?
        if error.domain == NSPOSIXErrorDomain {
            code = Int32(truncatingIfNeeded: error.code)
        } else if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            code = Int32(truncatingIfNeeded: underlying.code)
        }
        if error.domain == NSCocoaErrorDomain {
            switch CocoaError.Code(rawValue: error.code) {
            case .fileWriteFileExists:
                return WispError(.alreadyExists, "\(subject)already exists", errno: code ?? EEXIST, cause: cause)
            case .fileNoSuchFile, .fileReadNoSuchFile:
                return WispError(.notFound, "\(subject)no such file or directory", errno: code ?? ENOENT, cause: cause)
            case .fileReadNoPermission, .fileWriteNoPermission:
                return WispError(.permissionDenied, "\(subject)permission denied", errno: code ?? EACCES, cause: cause)
            case .fileWriteOutOfSpace:
                return WispError(.io, "\(subject)no space left on the device", errno: code ?? ENOSPC, cause: cause)
            case .fileWriteVolumeReadOnly:
                return WispError(.io, "\(subject)the filesystem is read-only", errno: code ?? EROFS, cause: cause)
            default:
                break
            }
        }
        if let code {
            return WispError(kind(errno: code), "\(subject)\(String(cString: strerror(code)))", errno: code, cause: cause)
        }
        return WispError(.io, "\(subject)the operation failed (\(error.domain) error \(error.code))", cause: cause)
    }

    static func kind(errno code: Int32) -> WispError.Kind {
        switch code {
        case ENOENT: return .notFound
        case EEXIST: return .alreadyExists
        case EACCES, EPERM: return .permissionDenied
        case EBUSY: return .busy
        default: return .io
        }
    }

    /// "missing key name at instances[2]", "wrong type at memory": where in the document.
    public static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.isEmpty ? "the top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing \"\(key.stringValue)\" at \(path(context.codingPath))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "wrong type of value at \(path(context.codingPath))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "bad value at \(path(context.codingPath))"
        @unknown default:
            return "not a document Wisp can read"
        }
    }
}
