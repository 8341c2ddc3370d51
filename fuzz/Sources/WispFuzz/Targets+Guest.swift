import GuestInspect
import WispCore

/// The whole guest view, as `wisp inspect`, `wisp kernel extract` and `wisp run` build it:
/// partitions → filesystems → OS root → fstab mounts → boot loaders → kernel headers.
extension FuzzTargets {
    static let guest: [FuzzTarget] = [
        FuzzTarget(name: "guest", summary: "a whole disk through GuestInspector: inspect, boot plan, the mounted tree") { input in
            let disk = FuzzInput.device(input, name: "guest.img")
            attempt {
                let inspector = try GuestInspector(disk: disk)
                attempt { _ = try inspector.inspect() }
                attempt { _ = try inspector.bootPlan() }
                attempt { _ = inspector.initArchitecture() }
                attempt { _ = try inspector.readGuestFile("/etc/fstab", limit: 1 << 16) }
                attempt {
                    let tree = try GuestFileSystem(inspector: inspector)
                    try walk(tree)
                }
            }
        },
    ]
}
