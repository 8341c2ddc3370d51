import GuestInspect
import WispCore

/// Kernel image headers, as `wisp kernel extract` and the boot plan read them.
extension FuzzTargets {
    static let kernels: [FuzzTarget] = [
        FuzzTarget(name: "kernel", summary: "x86 bzImage, arm64 Image (gzip too), EFI zboot, PE/UKI sections, ELF") { input in
            attempt { _ = KernelImage.needsWholeFile(head: Array(input.prefix(KernelImage.headLength))) }
            attempt { _ = try KernelImage.facts(input, source: "vmlinuz") }
            attempt { _ = try KernelImage.unwrapZboot(input, source: "vmlinuz") }
            attempt { _ = try KernelImage.gunzipArm64Image(input, source: "Image.gz") }
            attempt {
                let pe = try PEImage(input, source: "linux.efi")
                for section in [".linux", ".initrd", ".cmdline", ".osrel", ".uname"] {
                    _ = pe.sectionText(section, bytes: input)
                }
            }
            attempt { _ = try PEImage(headers: Array(input.prefix(4096)), fileSize: UInt64(input.count), source: "linux.efi") }
            attempt { _ = try ELFHeader(input, source: "vmlinux") }
        },
    ]
}
