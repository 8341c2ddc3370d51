import ArgumentParser
import Foundation
import ImageSources
import OCI
import WispCore
import WispKit

struct ImagePullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Pull and verify a catalog image or a container image into Wisp's cache (like skopeo copy).",
        discussion: """
        A catalog NAME (debian-13, ubuntu-24.04, fedora; `wisp images catalog` lists them) is \
        resolved to its newest build, downloaded (resumed after a cut or Ctrl-C), checked \
        against the distribution's published checksum (and signature, with gpgv, when its \
        keyring is installed), unpacked and cached; a build already cached is not fetched again. \
        Prints the cached disk's path.

        Otherwise REFERENCE is oci:DIR[:TAG] (an OCI image layout), oci-archive:FILE[:TAG], \
        docker-archive:FILE[:REPO:TAG] (docker save, Docker 25+ archives included) or \
        docker://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST]. Every blob's size and sha256 is checked \
        while it streams and every layer's uncompressed digest against the config before \
        anything is kept; blobs are stored once in $XDG_CACHE_HOME/wisp/oci, shared between \
        images. Registries: anonymous bearer tokens, or credentials from $REGISTRY_AUTH_FILE, \
        $XDG_RUNTIME_DIR/containers/auth.json or ~/.docker/config.json; plain HTTP only for \
        loopback registries or with --tls-verify=false. Prints the manifest digest.

        Examples:
          wisp image pull debian-13 --arch aarch64
          wisp image pull oci-archive:fedora-bootc.tar
          wisp image pull docker://127.0.0.1:5000/debian:12 --platform linux/arm64
        """)

    @Argument(help: "The image reference.") var reference: String
    @Option(help: "os/arch[/variant] to pick from a multi-platform index (default: this host's).") var platform: String?
    @Option(name: .customLong("tls-verify"), help: "Verify the registry's TLS certificate (false also allows plain HTTP).") var tlsVerify: Bool?
    @Option(help: "For a catalog name: the architecture to fetch (x86_64 or aarch64; default: this host's).") var arch: ArchitectureArgument?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        if let source = try CatalogImages().source(for: reference, architecture: arch?.guestArchitecture) {
            return try await pullCatalog(source)
        }
        let parsed = try OCIReference.parse(reference)
        var options = OCIPullOptions(platform: try platform.map { try OCIPlatform(parsing: $0) }, tlsVerify: tlsVerify)
        let progress = ProgressMeter("pulling", style: ProgressMeter.style(lines: true), keepsLine: false)
        options.progress = { progress.update($0.bytesDone, $0.bytesTotal) }
        let image = try await progress.track { try await OCIPuller(options: options).pull(parsed) }
        let digest = (image.manifestDigest ?? image.configDigest).description
        let bytes = image.layers.reduce(UInt64(0)) { $0 + UInt64(max(0, $1.descriptor.size)) }
        if json {
            struct Pulled: Encodable { var reference, digest, config, platform: String; var layers: Int; var size: UInt64 }
            try JSONOutput.print(Pulled(reference: reference, digest: digest, config: image.configDigest.description,
                                        platform: image.platform.description, layers: image.layers.count, size: bytes))
        } else {
            FileHandle.standardError.write(Data("pulled \(reference): \(image.platform), \(image.layers.count) layers, \(ByteSize.format(bytes))\n".utf8))
            print(digest)
        }
    }

    struct CatalogPulled: Encodable {
        var name, build, architecture, url, sha256, trust, path: String
        var size: UInt64
        var downloaded: Bool
    }

    func pullCatalog(_ named: CatalogImageSource) async throws {
        var source = named
        source.refresh = true
        let progress = ProgressMeter("downloading", style: ProgressMeter.style(lines: true), keepsLine: false)
        let context = ImageResolveContext(cache: ImageCacheDirectory(path: WispPaths().images.path),
                                          progress: { progress.update($0, $1) },
                                          announce: { progress.interject($0) })
        let (resolved, record, downloaded) = try await progress.track { try await source.fetch(context) }
        if json {
            try JSONOutput.print(CatalogPulled(name: record.resolution.name, build: record.resolution.build, architecture: record.resolution.architecture,
                                               url: record.resolution.url, sha256: record.sha256, trust: record.resolution.trust.rawValue,
                                               path: resolved.path, size: record.size, downloaded: downloaded))
        } else {
            FileOutput.standardError("\(downloaded ? "pulled" : "up to date:") \(record.resolution.name) \(record.resolution.build) (\(record.resolution.architecture)), \(ByteSize.format(record.size)), \(record.resolution.trust.rawValue)\n")
            print(resolved.path)
        }
    }
}
