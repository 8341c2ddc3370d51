import ArgumentParser
import DiskImage
import Foundation
import OCI
import WispCore

struct ImageConvertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert an image (backing chain flattened) or a container image to raw, qcow2, vmdk, vhd, vhdx or vdi.",
        discussion: """
            The output is sparse (empty and zero ranges are skipped), written on all cores and \
            appears atomically: a failed convert leaves nothing behind.
            Examples:
              wisp image convert -O raw disk.qcow2 disk.raw
              wisp image convert -O qcow2 -c --compression zstd disk.raw disk.qcow2
              wisp image convert -O raw --allow-backing ../bases overlay.qcow2 flat.raw
              wisp image convert -O vmdk -o subformat=streamOptimized disk.qcow2 disk.vmdk
              wisp image convert -O vhd -o subformat=fixed disk.qcow2 disk.vhd   (vpc works too)
              wisp image convert -O vhd --azure disk.qcow2 azure.vhd
              wisp image convert -O vhdx -o block_size=8M disk.qcow2 disk.vhdx
              wisp image convert -O vdi -o static=on disk.qcow2 disk.vdi
              wisp image convert -O qcow2 appliance.ova disk.qcow2   (an OVA's or box's boot disk)
            VHD sizes are rounded up to a CHS geometry, as qemu-img does, unless -o force_size=on. \
            --azure (or -o azure=on) writes what Azure accepts: a fixed VHD whose size is rounded \
            up to a whole MiB and kept exactly (force_size).
            The backing chain may use files in the input's own directory; --allow-backing \
            adds others. With -f the input is read as that format, never probed.

            A container image (oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, \
            docker://HOST/REPO[:TAG]) becomes a bootable disk: a GPT with one root partition \
            (the architecture's root type), ext4 holding the merged layers with every owner, \
            mode, xattr, hard link and device node, and a BLS entry \
            (/boot/loader/entries/wisp-KVER.conf) for the image's newest kernel \
            (/usr/lib/modules/KVER/vmlinuz as bootc lays it out, or /boot/vmlinuz-KVER) with \
            root=UUID=<the filesystem's UUID> rw and the image's /usr/lib/bootc/kargs.d \
            arguments. The disk is built once per image digest and size in \
            $XDG_CACHE_HOME/wisp/images/oci (the base `wisp run REF` uses) and exported from \
            there. An image without a kernel gives a disk that is not bootable, with a \
            warning; --bootable makes that an error.
              wisp image convert oci-archive:fedora-bootc.tar -O qcow2 fedora.qcow2
              wisp image convert docker://127.0.0.1:5000/debian:12 -O raw --size 8G debian.raw
            """)

    @Option(name: .short, help: "Input format (probed when omitted).") var format: String?
    @Option(name: [.customShort("O")], help: "Output format: raw, qcow2, vmdk (-o subformat=monolithicSparse|streamOptimized), vhd (or vpc), vhdx or vdi.") var outputFormat: String = "raw"
    @Flag(name: .short, help: "Compress the qcow2 output (deflate unless --compression says otherwise).")
    var compress = false
    @Option(name: .long, help: "Compression algorithm for -c: deflate (zlib) or zstd.") var compression: String?
    @Option(name: .short, help: "qemu-img style output options: cluster_size=64k, compression_type=zstd.")
    var options: String?
    @Flag(name: .long, help: "VHD for Azure: fixed, size rounded up to a whole MiB (implies -O vhd).")
    var azure = false
    @Flag(name: .short, help: "Show progress when stderr is not a terminal too: a line at each tenth or every 10 s (a bar on a terminal anyway).") var progress = false
    @Argument(help: "The input image.") var input: String
    @Argument(help: "The output file.") var output: String
    @OptionGroup var backing: BackingOptions
    @OptionGroup var container: ContainerImageOptions
    @Flag(help: "For a container image: refuse one without a kernel instead of writing a disk that cannot boot.")
    var bootable = false

    func run() async throws {
        var opts = ConvertOptions(format: azure ? .vhd : try parseImageFormat(outputFormat))
        opts.blockMapped.azure = azure
        var compressionName = compression
        var vmdkOptions: [String] = []
        for option in (options ?? "").split(separator: ",") where !option.isEmpty {
            let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
            let value = parts.count == 2 ? parts[1] : ""
            if try applyBlockMappedOption(parts[0], value, to: &opts.blockMapped, format: opts.format) { continue }
            switch parts[0] {
            case "cluster_size": opts.clusterSize = Int(try ByteSize.parse(value))
            case "compression_type": compressionName = compressionName ?? value
            default:
                guard opts.format == .vmdk else {
                    throw ValidationError("unknown option '\(parts[0])' (known: cluster_size, compression_type\(opts.format == .qcow2 ? "" : "; " + blockMappedOptionKeys(opts.format)))")
                }
                vmdkOptions.append(String(option))
            }
        }
        if opts.format == .vmdk { opts.vmdk = try VmdkCreateOptions(qemuOptions: vmdkOptions) }
        if compress || compression != nil {
            switch (compressionName ?? "deflate").lowercased() {
            case "deflate", "zlib": opts.compression = .deflate
            case "zstd": opts.compression = .zstd
            case let other: throw ValidationError("unknown compression '\(other)' (expected deflate or zstd)")
            }
        }
        let source: any BlockDevice
        if OCIReference.hasTransport(input) {
            // The cached raw disk is exported like any raw input: sparse, on all cores,
            // into whatever format -O asks for.
            let disk = try await container.baseDisk(input, requireKernel: bootable)
            source = try FileBlockDevice(path: disk.path)
        } else {
            // -f names the input's format: then it is never taken for an OVA or a box.
            let (path, policy) = format == nil ? try ImageArgument.disk(input, policy: backing.policy) : (input, backing.policy)
            source = try DiskImageFile.open(path, format: try format.map(parseImageFormat), policy: policy)
        }
        let display = ProgressMeter("converting", style: ProgressMeter.style(lines: progress), keepsLine: false)
        opts.progress = { display.update($0, $1) }
        try await display.track { try ImageConverter.convert(input: source, to: output, options: opts) }
    }
}
