import ArgumentParser
import DiskImage
import Foundation
import WispCore

struct ImageCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a qcow2 image's metadata and refcounts (like qemu-img check).",
        discussion: """
            Finds leaked clusters, refcounts lower than their references, overlapping metadata \
            and references outside the file. --repair rewrites wrong refcounts (leaks included) \
            and clears the dirty bit. Exit status: 0 clean, 2 corruption, 3 leaks only.
            """)

    @Argument(help: "The image file.") var image: String
    @Flag(name: [.short, .customLong("repair")], help: "Repair refcounts (leaks and too-low counts).") var repair = false
    @Flag(name: .long, help: "Print JSON instead of text.") var json = false
    @OptionGroup var backing: BackingOptions

    func run() async throws {
        let report = try Qcow2Checker.check(path: image, repair: repair, policy: backing.policy)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.text)
        }
        if repair && report.corruptions.isEmpty { return }
        if !report.corruptions.isEmpty || report.refcountErrors > 0 { throw ExitCode(2) }
        if report.leakedClusters > 0 { throw ExitCode(3) }
    }
}
