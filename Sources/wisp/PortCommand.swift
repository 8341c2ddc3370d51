import ArgumentParser
import Foundation
import Machine
import WispCore
import WispKit

struct PortCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "port",
        abstract: "List, add and remove an instance's port forwards, also while it runs.",
        discussion: """
        A running instance's forwards change at once (QEMU's hostfwd_add and \
        hostfwd_remove on its user-mode network, through QMP); every change is recorded in \
        the instance, so wisp start restores it. A stopped instance only has its record \
        changed. Before adding, Wisp checks the host port can be bound and names the \
        instance holding it, if one does. The SSH forward cannot be removed.

        Examples:
          wisp port web                       # list (also: wisp port ls web)
          wisp port add web 8080:80           # 127.0.0.1:8080 -> guest port 80
          wisp port add web 0.0.0.0:5353:53/udp
          wisp port rm web 8080
          wisp port rm web 5353/udp
        """,
        subcommands: [PortList.self, PortAdd.self, PortRemove.self],
        defaultSubcommand: PortList.self)
}

struct PortList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List an instance's forwards, SSH first.", aliases: ["list"])

    @Argument(help: "Instance name.") var name: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let forwards = try InstancePorts().list(name)
        if json {
            try JSONOutput.print(forwards.map(InstanceView.Port.init))
            return
        }
        print("HOST".padding(toLength: 24, withPad: " ", startingAt: 0) + "GUEST".padding(toLength: 12, withPad: " ", startingAt: 0) + "PROTO")
        for (index, forward) in forwards.enumerated() {
            let host = "\(forward.hostAddress):\(forward.hostPort)"
            print(host.padding(toLength: 24, withPad: " ", startingAt: 0)
                  + String(forward.guestPort).padding(toLength: 12, withPad: " ", startingAt: 0)
                  + forward.transport.rawValue + (index == 0 ? " (ssh)" : ""))
        }
    }
}

struct PortAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Forward a host port to the guest.")

    @Argument(help: "Instance name.") var name: String
    @Argument(help: "[HOST_IP:]HOST_PORT:GUEST_PORT[/udp] (host IP defaults to 127.0.0.1).") var forward: String

    func run() async throws {
        let change = try InstancePorts().add(name, try PortForward.parse(forward, option: "wisp port add"))
        for other in change.alsoRecordedBy {
            FileOutput.standardError("wisp: note: the stopped instance \(other) also forwards host port \(change.forward.hostPort)/\(change.forward.transport.rawValue); it cannot start while \(name) holds it\n")
        }
        FileOutput.standardError("\(name): \(change.forward)\(change.live ? "" : " (recorded; in effect from wisp start \(name))")\n")
    }
}

struct PortRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a forward by its host port.", aliases: ["remove"])

    @Argument(help: "Instance name.") var name: String
    @Argument(help: "HOST_PORT[/udp].") var hostPort: String

    func run() async throws {
        let (port, transport) = try PortForward.parseHostPort(hostPort, option: "wisp port rm")
        let change = try InstancePorts().remove(name, hostPort: port, transport: transport)
        FileOutput.standardError("\(name): removed \(change.forward)\(change.live ? "" : " (from its record)")\n")
    }
}
