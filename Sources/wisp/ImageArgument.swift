import DiskImage
import Foundation
import ImageSources
import WispKit

/// The disk behind the IMAGE argument of the verbs that read an image (inspect, image
/// info and convert, kernel extract, fs): the file itself, or for an OVA or a Vagrant box
/// its boot disk, unpacked once into the image cache (where `wisp run` finds it too). An
/// archive's disk is read self-contained, whatever --allow-backing says: its maker chose
/// its contents, so it may name no other file.
enum ImageArgument {
    static func disk(_ image: String, policy: ExternalReferencePolicy) throws -> (path: String, policy: ExternalReferencePolicy) {
        let cache = MachineArchiveCache(cache: ImageCacheDirectory(path: WispPaths().images.path)) { line in
            FileHandle.standardError.write(Data("\(line)\n".utf8))
        }
        guard let archive = try cache.importIfArchive(image) else { return (image, policy) }
        return (archive.disks[0], .selfContained)
    }
}
