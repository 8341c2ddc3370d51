import ArgumentParser
import DiskImage
import Foundation
import WispCore

struct ImageCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a qcow2, VMDK, VHD, VHDX or VDI image's metadata (like qemu-img check).",
        discussion: """
            qcow2: leaked clusters, refcounts lower than their references, overlapping metadata \
            and references outside the file. VHD: both footers and the dynamic header \
            (checksums), every BAT entry's block inside the file and before the footer. VHDX: \
            both headers (CRC-32C), both region tables, a log that needs replay, every BAT entry \
            inside the file. VDI: every block map entry inside the file, the allocated-block \
            count. VMDK: grain directories, grain tables and grains inside each sparse extent, \
            flat extents as long as the descriptor says. For all of them: no two blocks (or \
            grains) sharing bytes, none over the metadata. A differencing image's parent must \
            be reachable (see --allow-backing). Raw images have nothing to check.

            --repair rewrites wrong qcow2 refcounts (leaks included) and clears the dirty bit; \
            it is refused for other formats. Exit status: 0 clean, 2 corruption, 3 leaks only.

            Example: wisp image check disk.vhdx
            """)

    @Argument(help: "The image file.") var image: String
    @Flag(name: [.short, .customLong("repair")], help: "Repair qcow2 refcounts (leaks and too-low counts).") var repair = false
    @Flag(name: .long, help: "Print JSON instead of text.") var json = false
    @OptionGroup var backing: BackingOptions

    func run() async throws {
        let report = try ImageChecker.check(path: image, repair: repair, policy: backing.policy)
        if json {
            try JSONOutput.print(report)
        } else {
            print(report.text)
        }
        if repair && report.corruptions.isEmpty { return }
        if !report.corruptions.isEmpty || report.refcountErrors > 0 { throw ExitCode(2) }
        if report.leakedClusters > 0 { throw ExitCode(3) }
    }
}
