import ArgumentParser
import Foundation
import WispKit

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List instances with their state, image, SSH address and ports.", aliases: ["ls"])

    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let summaries = InstanceController().list()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(summaries), as: UTF8.self))
            return
        }
        var rows: [[String]] = [["NAME", "STATE", "IMAGE", "SSH", "PORTS", "ARCH", "ACCEL"]]
        for s in summaries {
            let image: String = s.image.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "-"
            let ssh: String = s.address.map { "\(s.user ?? "")@\($0)" } ?? "-"
            let ports: String = s.ports.isEmpty ? "-" : s.ports.joined(separator: ",")
            rows.append([s.name, s.state.rawValue, image, ssh, ports, s.arch ?? "-", s.accel ?? "-"])
        }
        var widths = [Int](repeating: 0, count: 7)
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
