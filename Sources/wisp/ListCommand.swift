import ArgumentParser
import Foundation
import WispKit

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List instances with their state, image, SSH address and ports.", aliases: ["ls"])

    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        if json {
            let store = InstanceStore()
            try JSONOutput.print(store.names().map { InstanceView(name: $0, store: store, detailed: false) })
            return
        }
        let summaries = InstanceController().list()
        var rows: [[String]] = [["NAME", "STATE", "IMAGE", "SSH", "PORTS", "ARCH", "ACCEL", "ENGINE"]]
        for s in summaries {
            // A container image by its reference and short digest; a file by its name.
            var image: String = s.image.map { s.digest == nil ? URL(fileURLWithPath: $0).lastPathComponent : $0 } ?? "-"
            if let digest = s.digest { image += "@" + digest.prefix("sha256:".count + 12) }
            if let build = s.build { image += " (\(build))" }
            if s.ephemeral == true { image += " (ephemeral)" }
            let ssh: String = s.address.map { "\(s.user ?? "")@\($0)" } ?? "-"
            let ports: String = s.ports.isEmpty ? "-" : s.ports.joined(separator: ",")
            rows.append([s.name, s.state.rawValue, image, ssh, ports, s.arch ?? "-", s.accel ?? "-", s.engine])
        }
        var widths = [Int](repeating: 0, count: 8)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        for row in rows {
            var line = ""
            for (i, cell) in row.enumerated() {
                line += i == row.count - 1 ? cell : cell.padding(toLength: widths[i] + 2, withPad: " ", startingAt: 0)
            }
            print(line)
        }
    }
}
