import ArgumentParser
import DiskImage
import Foundation
import WispCore
import WispKit

struct ImageExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write an OVA (OVF descriptor, stream-optimized VMDK, SHA-256 manifest) from an image or an instance's disk.",
        discussion: """
            The OVA is a tar of OUT.ovf (first, as the OVF standard wants), OUT-disk1.vmdk \
            (stream-optimized, the format VirtualBox, VMware and OVF tools import) and OUT.mf \
            (SHA256 of both), written atomically. From an image, its backing chain is flattened; \
            with --instance, the instance's overlay and base are, and it must be stopped (a \
            running guest would change the disk while it is read). The OVF's CPU count and \
            memory are the instance's unless --cpus and --memory say otherwise (1 CPU and 1G \
            for an image).

            Examples:
              wisp image export debian-12.qcow2 debian-12.ova
              wisp image export --instance web --name web-appliance web.ova
              wisp image export --cpus 4 --memory 4G disk.raw appliance.ova
            """)

    @Option(help: "Export this stopped instance's disk instead of an image file.") var instance: String?
    @Option(help: "The machine's name in the OVF (default: the instance's name, or the output's file name).") var name: String?
    @Option(help: "CPU count in the OVF (default: the instance's, else 1).") var cpus: Int?
    @Option(help: "Memory in the OVF, e.g. 2G (default: the instance's, else 1G).") var memory: String?
    @Flag(name: .short, help: "Show progress when stderr is not a terminal too: a line at each tenth or every 10 s (a bar on a terminal anyway).") var progress = false
    @Argument(help: "IMAGE OUT.ova, or OUT.ova alone with --instance.") var paths: [String] = []
    @OptionGroup var backing: BackingOptions

    func validate() throws {
        if instance != nil && paths.count != 1 { throw ValidationError("with --instance give only the output file: wisp image export --instance NAME OUT.ova") }
        if instance == nil && paths.count != 2 { throw ValidationError("give the image and the output file: wisp image export IMAGE OUT.ova") }
        if let cpus, !(1...256).contains(cpus) { throw ValidationError("--cpus \(cpus): expected 1 to 256") }
    }

    func run() async throws {
        let memoryBytes = try memory.map(ByteSize.parseMemory)
        if let memoryBytes, memoryBytes < 1 << 20 { throw ValidationError("--memory: at least 1M") }
        let display = ProgressMeter("exporting", style: ProgressMeter.style(lines: progress), keepsLine: false)
        if let instance {
            let overrides = InstanceExporter.Overrides(name: name, cpus: cpus, memoryBytes: memoryBytes)
            try await display.track {
                try InstanceExporter().export(instance, to: paths[0], overrides: overrides, progress: { display.update($0, $1) })
            }
            return
        }
        let (path, policy) = try ImageArgument.disk(paths[0], policy: backing.policy)
        let output = paths[1]
        let machine = OvaWriter.Machine(name: name ?? URL(fileURLWithPath: output).deletingPathExtension().lastPathComponent,
                                        cpus: cpus ?? 1, memoryMiB: (memoryBytes ?? 1 << 30) >> 20)
        let disk = try DiskImageFile.open(path, policy: policy)
        try await display.track {
            try OvaWriter.export(disk, to: output, machine: machine, progress: { display.update($0, $1) })
        }
    }
}
