import DiskImage
import Foundation
import Machine
import WispCore

/// An instance's boot disk for the verbs that read images (`wisp fs`): its overlay with
/// the chain below it, under the same policy `wisp start` resolves it with.
///
/// A running instance is refused rather than read: QEMU writes the overlay's qcow2 tables
/// and the guest's filesystem caches its own metadata in memory, so a reader could see
/// clusters the tables no longer point to, or a directory half-updated. Pausing the guest
/// would make the qcow2 layer consistent (QEMU flushes on stop) but not the filesystem
/// inside it. `wisp cp` reads a running guest through the guest itself.
public enum InstanceDiskReader {
    /// The overlay of instance `name` and the policy its chain is read under, or nil when
    /// there is no such instance.
    public static func disk(ofInstance name: String, store: InstanceStore = InstanceStore()) throws -> (path: String, policy: ExternalReferencePolicy)? {
        guard (try? InstanceStore.validate(name: name)) != nil,
              FileManager.default.fileExists(atPath: store.files(name).directory) else { return nil }
        let record = try store.load(name)
        let files = store.files(name)
        if LibvirtEngine.placement(files) != nil {
            throw LibvirtEngine.ownsDisk(name, verb: "wisp fs")
        }
        let (state, _) = InstanceState.probe(files)
        guard state == .stopped else {
            throw WispError(.busy, "instance \(name) is \(state.rawValue): its disk changes while it runs, so Wisp reads it only when stopped (wisp stop \(name)); wisp cp \(name):PATH copies from the running guest")
        }
        let baseDirectory = (record.baseImagePath as NSString).deletingLastPathComponent
        return (files.overlay, .confined(allowedDirectories: record.allowedBackingDirectories + [baseDirectory]))
    }
}
