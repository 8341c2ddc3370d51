import DiskImage
import Foundation
@testable import ImageSources
@testable import OCI
import WispCore

/// Container images and archives: OCI/Docker JSON documents, tar indexes of
/// oci-archive/docker-archive/OVA files, layer tar streams, OVF descriptors, Vagrant box
/// metadata, bootc kargs.d files.
extension FuzzTargets {
    /// docker-archive's manifest.json, as `DockerArchiveTransport` decodes it.
    struct DockerManifestEntry: Decodable {
        var Config: String
        var RepoTags: [String]?
        var Layers: [String]
    }

    static let containers: [FuzzTarget] = [
        FuzzTarget(name: "oci-json", summary: "OCI index, manifest, image config; docker-archive manifest.json") { input in
            attempt { _ = try OCIJSON.decode(OCIIndex.self, input, source: "fuzz", what: "index.json") }
            attempt { _ = try OCIJSON.decode(OCIManifest.self, input, source: "fuzz", what: "manifest") }
            attempt { _ = try OCIJSON.decode(OCIImageConfig.self, input, source: "fuzz", what: "config") }
            attempt { _ = try OCIJSON.decode([DockerManifestEntry].self, input, source: "fuzz", what: "manifest.json") }
        },
        FuzzTarget(name: "tar", summary: "tar indexes: oci-archive/docker-archive (ustar, PAX, GNU long names) and OVA") { input in
            let dir = ScratchDirectory.populate([("archive.tar", input)])
            attempt {
                let file = try PosixFile(path: "\(dir)/archive.tar", mode: .readOnly)
                defer { file.close() }
                let index = try TarArchiveIndex(file: file, source: "archive.tar")
                for name in ["index.json", "oci-layout", "manifest.json", "blobs/sha256/x"] { _ = index.member(name) }
            }
            attempt { _ = try TarIndex(MemoryBlockDevice(name: "image.ova", bytes: input)) }
        },
        FuzzTarget(name: "layer-tar", summary: "layer tar streams through libarchive: entries, PAX xattrs, links, data blocks") { input in
            let dir = ScratchDirectory.populate([("layer.tar", input)])
            let stream = try LayerStream(path: "\(dir)/layer.tar", compression: .detect, limit: 64 << 20, source: "layer.tar")
            let reader = try LayerTarReader(stream: stream)
            var entries = 0
            while entries < 1000, let entry = try reader.next() {
                entries += 1
                if entry.kind == .regular {
                    while try reader.nextDataBlock(declaredSize: entry.size) != nil {}
                }
            }
        },
        FuzzTarget(name: "ovf", summary: "OVF descriptors (XML: disks, files, CPU and memory)") { input in
            _ = try OvfDescriptor.parse(input, name: "image.ovf")
        },
        FuzzTarget(name: "box", summary: "Vagrant box metadata.json") { input in
            _ = try BoxMetadata.parse(input, name: "metadata.json")
        },
        FuzzTarget(name: "bootc-kargs", summary: "bootc kargs.d TOML files") { input in
            let files = FuzzInput.files(input, limit: 4).enumerated().map {
                BootcKernelArguments.File(name: "\($0.offset)-wisp.toml", text: FuzzInput.text($0.element))
            }
            _ = try BootcKernelArguments.merge(files, architecture: "x86_64")
        },
    ]
}
