import DiskImage
import Machine

extension DiskFormat {
    /// The QEMU driver for an image format Wisp read from the file's magic.
    init(_ format: ImageFormat) {
        switch format {
        case .raw: self = .raw
        case .qcow2: self = .qcow2
        case .vhd: self = .vpc
        case .vhdx: self = .vhdx
        case .vmdk: self = .vmdk
        case .vdi: self = .vdi
        }
    }
}
