import ArgumentParser
import DiskImage
import Foundation
import WispCore

struct ImageCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create an empty raw or qcow2 image, or a qcow2 overlay on a backing image.",
        discussion: """
            Examples:
              wisp image create -f qcow2 disk.qcow2 20G
              wisp image create -f vmdk -o subformat=streamOptimized,adapter_type=lsilogic disk.vmdk 20G
              wisp image create -f qcow2 -b base.qcow2 -F qcow2 overlay.qcow2      (size of the base)
              wisp image create -f vhd -o subformat=fixed disk.vhd 10G   (vpc works too)
              wisp image create -f vhdx -o block_size=8M disk.vhdx 10G
              wisp image create -f vdi -o static=on disk.vdi 10G
            A relative backing name is resolved against the new image's directory, as in QEMU. \
            The backing image's own chain may use files in its directory; --allow-backing adds others.
            """)

    @Option(name: .short, help: "Format of the new image: raw, qcow2, vmdk, vhd (or vpc), vhdx or vdi.") var format: String = "qcow2"
    @Option(name: .short, help: "Backing image (qcow2 only): unwritten clusters read from it.") var backing: String?
    @Option(name: [.customShort("F")], help: "Format of the backing image (probed when omitted).") var backingFormat: String?
    @Option(name: .short, help: "qemu-img style options: cluster_size=64k, extended_l2=on, compression_type=zstd.")
    var options: String?
    @Argument(help: "The image file to create.") var file: String
    @Argument(help: "Virtual size (10G, 512M, ...); defaults to the backing image's size.") var size: String?
    @OptionGroup var backingOptions: BackingOptions

    func run() async throws {
        let fmt = try parseImageFormat(format)
        var clusterSize = 65536
        var extendedL2 = false
        var compression = Qcow2CompressionType.deflate
        var vmdkOptions: [String] = []
        var mapped = BlockMappedWriteOptions()
        for option in (options ?? "").split(separator: ",") where !option.isEmpty {
            let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
            let value = parts.count == 2 ? parts[1] : ""
            if try applyBlockMappedOption(parts[0], value, to: &mapped, format: fmt) { continue }
            switch parts[0] {
            case "cluster_size": clusterSize = Int(try ByteSize.parse(value))
            case "extended_l2": extendedL2 = value == "on" || value == "true"
            case "compression_type":
                compression = value == "zstd" ? .zstd : value == "zlib" || value == "deflate" ? .deflate
                    : try { throw ValidationError("compression_type must be zlib or zstd") }()
            default:
                guard fmt == .vmdk else {
                    throw ValidationError("unknown option '\(parts[0])' (known: cluster_size, extended_l2, compression_type)")
                }
                vmdkOptions.append(String(option))
            }
        }
        var virtualSize: UInt64
        if let size {
            virtualSize = try ByteSize.parse(size)
        } else if let backing {
            let overlayDir = (file as NSString).deletingLastPathComponent
            let resolved = backing.hasPrefix("/") || overlayDir.isEmpty ? backing : overlayDir + "/" + backing
            virtualSize = try BackingChain.resolve(path: resolved, format: try backingFormat.map(parseImageFormat),
                                                   policy: backingOptions.policy).top.virtualSize
        } else {
            throw ValidationError("give a size (for example 10G) or a backing image with -b")
        }
        switch fmt {
        case .raw:
            guard backing == nil else { throw ValidationError("raw images cannot have a backing file") }
            let output = try AtomicOutput(path: file)
            try output.file.truncate(to: virtualSize)
            try output.commit()
        case .qcow2:
            try Qcow2Image.create(path: file, virtualSize: virtualSize, clusterSize: clusterSize, backingFile: backing,
                                  backingFormat: try backingFormat.map(parseImageFormat), extendedL2: extendedL2,
                                  compressionType: compression, backingPolicy: backingOptions.policy)
        case .vmdk:
            guard backing == nil else { throw ValidationError("wisp creates VMDK snapshots only through qemu-img; use qcow2 overlays") }
            try VmdkImage.create(path: file, virtualSize: virtualSize, options: try VmdkCreateOptions(qemuOptions: vmdkOptions))
        case .vhd, .vhdx, .vdi:
            guard backing == nil else { throw ValidationError("wisp creates \(fmt.rawValue) images without a backing file") }
            try ImageConverter.createEmpty(path: file, virtualSize: virtualSize, format: fmt, options: mapped)
        default:
            throw ValidationError("wisp creates raw, qcow2, vmdk, vhd, vhdx and vdi images")
        }
        print("Formatting '\(file)', fmt=\(fmt.rawValue) size=\(virtualSize)" + (backing.map { " backing_file=\($0)" } ?? ""))
    }
}
