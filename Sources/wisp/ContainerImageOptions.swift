import ArgumentParser
import Foundation
import ImageSources
import OCI
import WispCore
import WispKit

/// The options of commands that take a container reference where an image goes
/// (`wisp image convert REF`, `wisp inspect REF`): which platform to pull, TLS, and the
/// disk size. The disk comes from `ContainerDiskCache`, the same cache `wisp run` uses.
struct ContainerImageOptions: ParsableArguments {
    @Option(help: "For a container image: os/arch[/variant] to pick from a multi-platform index (default: this host's).")
    var platform: String?
    @Option(name: .customLong("tls-verify"), help: "For a container image: verify the registry's TLS certificate (false also allows plain HTTP).")
    var tlsVerify: Bool?
    @Option(name: .customLong("size"), help: "For a container image: the disk's size (e.g. 10G; default: the content plus 20%).")
    var size: String?

    /// The cached base disk for `reference` (pulled and built when not cached yet).
    func baseDisk(_ reference: String, requireKernel: Bool) async throws -> ContainerBaseDisk {
        var pull = OCIPullOptions(platform: try platform.map { try OCIPlatform(parsing: $0) }, tlsVerify: tlsVerify)
        let progress = ProgressMeter("pulling", style: ProgressMeter.style(lines: true), keepsLine: false)
        pull.progress = { progress.update($0.bytesDone, $0.bytesTotal) }
        let options = ContainerDiskOptions(size: try size.map(ByteSize.parse))
        let cache = ContainerDiskCache(images: ImageCacheDirectory(path: WispPaths().images.path))
        let disk = try await progress.track {
            try await cache.baseDisk(for: reference, pull: pull, options: options, requireKernel: requireKernel) { line in
                progress.interject(line)
            }
        }
        for warning in disk.report.warnings {
            FileHandle.standardError.write(Data("wisp: warning: \(warning)\n".utf8))
        }
        return disk
    }
}
