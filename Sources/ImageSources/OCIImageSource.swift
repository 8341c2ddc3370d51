import OCI
import WispCore

/// A container image (oci:, oci-archive:, docker-archive:, docker://) as a base image: the
/// cached disk `ContainerDiskCache` builds from it, which must have a kernel to boot.
public struct OCIImageSource: ImageSource {
    public let reference: String
    public var pullOptions: OCIPullOptions
    public var diskOptions: ContainerDiskOptions

    public init(reference: String, pullOptions: OCIPullOptions = OCIPullOptions(), diskOptions: ContainerDiskOptions = ContainerDiskOptions()) throws {
        _ = try OCIReference.parse(reference)
        self.reference = reference
        self.pullOptions = pullOptions
        self.diskOptions = diskOptions
    }

    public static func handles(_ text: String) -> Bool { OCIReference.hasTransport(text) }

    public func resolve(_ context: ImageResolveContext) async throws -> ResolvedImage {
        let disk = try await ContainerDiskCache(images: context.cache).baseDisk(
            for: reference, pull: pullOptions, options: diskOptions, requireKernel: true, announce: context.announce)
        if let expected = context.expectedDigest {
            // --digest pins the image (its manifest digest), not the disk Wisp made from it.
            guard disk.report.imageDigest == "sha256:\(expected)" else {
                throw WispError(.digestMismatch, "\(reference) is \(disk.report.imageDigest), expected sha256:\(expected)")
            }
        }
        return ResolvedImage(path: disk.path, format: .raw, sha256: nil,
                             origin: .container(reference: reference, digest: disk.report.imageDigest))
    }
}
