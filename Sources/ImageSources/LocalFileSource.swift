#if canImport(Glibc)
import Glibc
#endif
import DiskImage
import Foundation
import WispCore

/// A disk image file on this machine, used in place (it is never written); an OVA or a
/// Vagrant box is unpacked once into the cache and its boot disk used from there.
public struct LocalFileSource: ImageSource {
    public let reference: String

    public init(reference: String) { self.reference = reference }

    public func resolve(_ context: ImageResolveContext) async throws -> ResolvedImage {
        let path = URL(fileURLWithPath: reference).standardizedFileURL.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw WispError.notFound("\(reference): no such image file")
        }
        guard !isDirectory.boolValue else {
            throw WispError.invalidArgument("\(reference) is a directory, not an image file")
        }
        guard access(path, R_OK) == 0 else { throw WispError.posix("open", path, errno: errno) }
        var digest: String? = nil
        if let expected = context.expectedDigest {
            try ImageCacheDirectory.verify(path, expected: expected)
            digest = expected
        }
        return try ResolvedImage(path: path, format: try MachineArchiveProbe.diskFormat(of: path), sha256: digest, origin: .localFile)
            .importingArchive(context, reference: reference)
    }
}
