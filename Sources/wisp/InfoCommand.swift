import ArgumentParser
import Foundation
import WispCore
import WispKit

struct InfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Show instances: state, image, CPUs, memory, disks, ports, mounts, SSH and uptime.",
        discussion: """
        Examples:
          wisp info web
          wisp info web --json | jq '.ssh.port'
        """)

    @Argument(help: "Instance names.") var names: [String]
    @Flag(help: "Print JSON (an array when several names are given).") var json = false

    func run() async throws {
        let store = InstanceStore()
        for name in names where !FileManager.default.fileExists(atPath: store.files(name).directory) {
            throw WispError.notFound("no instance named \(name) (see wisp list)")
        }
        let views = names.map { InstanceView(name: $0, store: store, detailed: true) }
        if json {
            if views.count == 1 { try JSONOutput.print(views[0]) } else { try JSONOutput.print(views) }
            return
        }
        FileOutput.standardOutput(views.map(Self.render).joined(separator: "\n"))
    }

    static func render(_ view: InstanceView) -> String {
        var rows: [(String, String)] = [("Name", view.name), ("State", view.state)]
        if let image = view.image { rows.append(("Image", image + (view.digest.map { "@\($0)" } ?? ""))) }
        if let os = view.os { rows.append(("OS", os)) }
        if let arch = view.arch { rows.append(("Arch", arch)) }
        if let cpus = view.cpus { rows.append(("CPUs", "\(cpus)")) }
        if let memory = view.memory { rows.append(("Memory", ByteSize.format(memory))) }
        if let accelerator = view.accelerator { rows.append(("Accelerator", accelerator)) }
        if let engine = view.engine { rows.append(("Engine", engine)) }
        if let boot = view.boot { rows.append(("Boot", boot)) }
        if view.ephemeral { rows.append(("Ephemeral", "yes (writes are discarded when it stops)")) }
        for (index, disk) in (view.disks ?? []).enumerated() {
            var text = disk.path + " (\(disk.format)"
            if let size = disk.virtualSize { text += ", \(ByteSize.format(size))" }
            if let used = disk.allocatedSize { text += ", \(ByteSize.format(used)) used" }
            if disk.readOnly { text += ", read-only" }
            if disk.cdrom == true { text += ", CD-ROM" }
            text += ")"
            if let base = disk.backing.last { text += " on \(base)" }
            rows.append((index == 0 ? "Disks" : "", text))
        }
        rows.append(("Ports", view.ports.isEmpty ? "-" : view.ports.map { "\($0.hostAddress):\($0.hostPort)->\($0.guestPort)/\($0.protocol)" }.joined(separator: ", ")))
        for (index, mount) in view.mounts.enumerated() {
            rows.append((index == 0 ? "Mounts" : "", "\(mount.hostPath) -> \(mount.guestPath)\(mount.readOnly ? " (read-only)" : "")"))
        }
        if let ssh = view.ssh { rows.append(("SSH", "\(ssh.command)  (ssh -p \(ssh.port) \(ssh.user)@\(ssh.host))")) }
        if let pid = view.pid { rows.append(("PID", "\(pid)")) }
        if let uptime = view.uptimeSeconds { rows.append(("Uptime", Self.duration(uptime))) }
        rows.append(("Directory", view.directory))
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.isEmpty ? String(repeating: " ", count: width + 2) + $0.1 : ($0.0 + ":").padding(toLength: width + 2, withPad: " ", startingAt: 0) + $0.1 }
            .joined(separator: "\n") + "\n"
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds)
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(s % 60)s" }
        return "\(s / 3600)h\((s % 3600) / 60)m"
    }
}
