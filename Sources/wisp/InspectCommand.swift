import ArgumentParser
import DiskImage
import Foundation
import GuestInspect
import ImageSources
import OCI
import WispCore

struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a disk image's partitions, filesystems, OS, fstab and boot entries.",
        discussion: """
            Reads the image through Wisp's own readers (no appliance, nothing written): the \
            partition table, each filesystem's type, label and UUID, the OS root and its \
            os-release, /etc/fstab, every boot entry (GRUB, BLS, extlinux, UKI) with its kernel, \
            initrd and command line, which entry boots by default and why, and what the default \
            kernel is (architecture, format, version, whether QEMU can boot it directly).

            A container image reference (oci:, oci-archive:, docker-archive:, docker://) is \
            pulled and turned into its cached base disk (as `wisp image convert` makes it), \
            which is then inspected like any disk; the image's platform, digest, layers, \
            size, kernels and kargs.d arguments are shown first.

            A live or installer ISO has no OS root: its boot menus (boot/grub/grub.cfg, \
            EFI/BOOT/grub.cfg also inside the El Torito EFI image, loader/entries, \
            isolinux/isolinux.cfg, syslinux.cfg) are read from the medium itself.
              wisp inspect disk.qcow2
              wisp inspect debian-live-12-amd64.iso
              wisp inspect oci-archive:fedora-bootc.tar
              wisp inspect --json docker://127.0.0.1:5000/debian:12
            """)

    @Argument(help: "The disk image (qcow2, raw, vmdk, vhd, vhdx, vdi, an ISO, an OVA or a Vagrant box) or a container image reference.") var image: String
    @Flag(help: "Print the report as JSON.") var json = false
    @OptionGroup var backing: BackingOptions
    @OptionGroup var container: ContainerImageOptions

    /// `--json` for a container image: the image's side and the disk's, in one object.
    struct ContainerInspection: Encodable {
        var container: ContainerDiskReport
        var disk: GuestReport
    }

    func run() async throws {
        if OCIReference.hasTransport(image) {
            let base = try await container.baseDisk(image, requireKernel: false)
            let report = try GuestInspector(disk: try FileBlockDevice(path: base.path)).inspect()
            if json {
                try JSONOutput.print(ContainerInspection(container: base.report, disk: report))
            } else {
                print(Self.render(base.report) + "\n" + Self.render(report))
            }
            return
        }
        let (path, policy) = try ImageArgument.disk(image, policy: backing.policy)
        let disk = try DiskImageFile.open(path, policy: policy)
        let report = try GuestInspector(disk: disk).inspect()
        if json {
            try JSONOutput.print(report)
            return
        }
        print(Self.render(report))
    }

    static func render(_ c: ContainerDiskReport) -> String {
        var out = ["container image: \(c.reference)",
                   "  digest    \(c.imageDigest)",
                   "  platform  \(c.platform)",
                   "  layers    \(c.layers.count), \(ByteSize.format(c.layerBytes)) compressed",
                   "  content   \(c.entries) names, \(c.files) files, \(ByteSize.format(c.fileBytes))",
                   "  disk      \(ByteSize.format(c.diskSize)) (root filesystem \(ByteSize.format(c.filesystemSize)), uuid \(c.filesystemUUID))"]
        if let os = c.osName { out.append("  os        \(os)") }
        for k in c.kernels { out.append("  kernel    \(k.version): \(k.kernel)\(k.initrd.map { ", initrd \($0)" } ?? ", no initrd")") }
        if c.kernels.isEmpty { out.append("  kernel    none: the disk is not bootable") }
        out.append("  kargs.d   \(c.kernelArguments.isEmpty ? "(none)" : c.kernelArguments.joined(separator: " "))")
        if let e = c.bootEntry { out.append("  entry     \(e.path)") }
        return out.joined(separator: "\n")
    }

    static func render(_ r: GuestReport) -> String {
        var out: [String] = []
        out.append("image: \(r.image)")
        out.append("partition table: \(r.partitionScheme.rawValue)")
        for p in r.partitions {
            let fs = r.filesystems.first { $0.partition == p.number }
            var line = "  \(p.number)  start \(p.startOffset)  size \(ByteSize.format(p.size))"
            if let n = p.name, !n.isEmpty { line += "  name \(n)" }
            if let fs {
                line += "  \(fs.type)"
                if let l = fs.label, !l.isEmpty { line += "  label \(l)" }
                if let u = fs.uuid { line += "  uuid \(u)" }
                if let m = fs.mountPoint { line += "  on \(m)" }
                if let why = fs.unreadable { line += "  (unreadable: \(why))" }
            }
            out.append(line)
        }
        if let root = r.rootPartition { out.append("root: partition \(root)") }
        if let os = r.osRelease {
            out.append("os: \(os.prettyName ?? os.name ?? "?")  (id \(os.id ?? "?"), version \(os.versionID ?? "?"))")
        }
        if !r.fstab.isEmpty {
            out.append("fstab:")
            for e in r.fstab { out.append("  \(e.device)  \(e.mountPoint)  \(e.type)  \(e.options)") }
        }
        out.append("boot entries:")
        for (i, e) in r.bootEntries.enumerated() {
            let mark = i == r.defaultEntry ? "*" : " "
            let menu = e.submenu.isEmpty ? "" : e.submenu.joined(separator: " > ") + " > "
            out.append(" \(mark)\(i)  [\(e.source.rawValue)] \(menu)\(e.title)\(e.isRescue ? "  (rescue)" : "")")
            out.append("      id       \(e.id)")
            if let v = e.version { out.append("      version  \(v)") }
            out.append("      kernel   \(e.kernel)\(e.isUnifiedKernelImage ? "  (unified kernel image)" : "")")
            for initrd in e.initrds { out.append("      initrd   \(initrd)") }
            out.append("      cmdline  \(e.commandLine)\(e.commandLineIsFallback ? "  (built by Wisp: the entry gives none)" : "")")
            out.append("      from     \(e.configPath)")
        }
        out.append("default: \(r.defaultEntry.map(String.init) ?? "none"): \(r.defaultReason)")
        out.append("architecture: \(r.architecture?.rawValue ?? "unknown")")
        if let k = r.kernel {
            var line = "kernel: \(k.architecture) \(k.format)"
            if let c = k.compression { line += ", \(c)-compressed" }
            if let p = k.bootProtocol { line += ", boot protocol \(p)" }
            if let size = k.imageSize, size > 0 { line += ", image size \(size)" }
            if let rel = k.relocatable { line += rel ? ", relocatable" : ", not relocatable" }
            out.append(line)
            if let v = k.versionString { out.append("  version: \(v)") }
            out.append("  QEMU direct boot: \(k.qemuDirectBoot ? "yes" : "no")\(k.note.map { " (\($0))" } ?? "")")
        }
        for w in r.warnings { out.append("warning: \(w)") }
        return out.joined(separator: "\n")
    }
}
