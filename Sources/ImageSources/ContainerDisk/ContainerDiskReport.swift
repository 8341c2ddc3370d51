import Foundation
import OCI

/// What was built from a container image, kept beside a cached disk so `wisp inspect` can
/// show the image's side (layers, platform) without reading the layers again.
public struct ContainerDiskReport: Sendable, Equatable, Codable {
    public var reference: String
    /// The manifest digest, or the config digest for docker archives (which have none).
    public var imageDigest: String
    public var platform: String
    public var layers: [String]
    /// Compressed bytes of all layers.
    public var layerBytes: UInt64
    public var diskSize: UInt64
    public var filesystemUUID: String
    public var filesystemSize: UInt64
    /// Distinct regular files and their bytes, names in the tree.
    public var files: Int
    public var fileBytes: UInt64
    public var entries: Int
    /// Kernels found, newest first; the entry boots the first.
    public var kernels: [ContainerKernel]
    public var bootEntry: ContainerBootEntry?
    /// The kargs.d arguments (already in the entry's options).
    public var kernelArguments: [String]
    public var osName: String?
    public var warnings: [String]
}
