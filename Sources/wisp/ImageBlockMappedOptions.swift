import ArgumentParser
import DiskImage
import WispCore

/// qemu-img's -o options for VHD ("vpc"), VHDX and VDI output. Returns false for keys
/// that are not theirs so the caller can try its own.
func applyBlockMappedOption(_ key: String, _ value: String, to options: inout BlockMappedWriteOptions,
                            format: ImageFormat) throws -> Bool {
    func flag() throws -> Bool {
        switch value.lowercased() {
        case "", "on", "true", "yes": return true
        case "off", "false", "no": return false
        default: throw ValidationError("option \(key) takes on or off (got '\(value)')")
        }
    }
    switch (format, key) {
    case (.vhd, "subformat"), (.vhdx, "subformat"):
        switch value {
        case "dynamic": options.preallocated = false
        case "fixed": options.preallocated = true
        default: throw ValidationError("subformat must be dynamic or fixed (got '\(value)')")
        }
    case (.vhd, "force_size"): options.forceSize = try flag()
    case (.vhd, "azure"): options.azure = try flag()
    case (.vdi, "static"): options.preallocated = try flag()
    case (.vdi, "preallocation"), (.vhdx, "preallocation"):
        switch value {
        case "off": options.preallocated = false
        case "metadata", "falloc", "full": options.preallocated = true
        default: throw ValidationError("preallocation must be off, metadata, falloc or full (got '\(value)')")
        }
    case (.vhdx, "block_size"): options.blockSize = try ByteSize.parse(value)
    case (.vhdx, "log_size"): options.logSize = try ByteSize.parse(value)
    default: return false
    }
    return true
}

/// The -o keys each block-mapped format takes, for messages.
func blockMappedOptionKeys(_ format: ImageFormat) -> String {
    switch format {
    case .vhd: return "subformat=dynamic|fixed, force_size=on, azure=on"
    case .vhdx: return "subformat=dynamic|fixed, block_size, log_size, preallocation"
    case .vdi: return "static=on|off, preallocation"
    default: return ""
    }
}
