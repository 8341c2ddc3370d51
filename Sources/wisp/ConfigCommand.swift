import ArgumentParser
import Foundation
import Machine
import WispCore
import WispKit

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Show the defaults `wisp run` uses and where each comes from.",
        discussion: """
        Defaults live in $XDG_CONFIG_HOME/wisp/config.yaml (~/.config/wisp/config.yaml); a \
        flag always wins over them. Settings: cpus, memory (a bare number is MiB), disk-size, \
        ssh-keys (a list of public key files), user, accelerator (auto, kvm or tcg), mounts \
        (HOST_DIR[:GUEST_DIR][:ro] each), mirrors (a download root per catalog distribution, \
        e.g. {debian: https://mirror.example/debian-cloud/}).

        Example config.yaml:
          cpus: 4
          memory: 4G
          ssh-keys: [~/.ssh/id_ed25519.pub]
          accelerator: tcg
        """,
        subcommands: [ConfigShowCommand.self, ConfigPathCommand.self])
}

struct ConfigPathCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "path", abstract: "Print the config file's path.")

    func run() async throws {
        print(WispConfig.path())
    }
}

struct ConfigShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Print the effective defaults and where each came from.",
        discussion: """
        Examples:
          wisp config show
          wisp config show --json | jq '.memory.value'
        """)

    @Flag(help: "Print JSON.") var json = false

    struct Setting: Encodable {
        var value: Value
        /// "default", or the config file's path.
        var source: String
    }

    enum Value: Encodable {
        case int(Int), bytes(UInt64), text(String), list([String])
        /// A default that depends on the image or the host: null in JSON, the words in text.
        case described(String)

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .int(let v): try container.encode(v)
            case .bytes(let v): try container.encode(v)
            case .text(let v): try container.encode(v)
            case .list(let v): try container.encode(v)
            case .described: try container.encodeNil()
            }
        }

        var text: String {
            switch self {
            case .int(let v): "\(v)"
            case .bytes(let v): ByteSize.format(v)
            case .text(let v): v
            case .list(let v): v.isEmpty ? "-" : v.joined(separator: ", ")
            case .described(let v): v
            }
        }
    }

    func run() async throws {
        let config = try WispConfig.load()
        let file = config.path ?? WispConfig.path()
        func from<T>(_ value: T?, _ fallback: Value, _ wrap: (T) -> Value) -> Setting {
            value.map { Setting(value: wrap($0), source: file) } ?? Setting(value: fallback, source: "default")
        }
        let settings: [(String, Setting)] = [
            ("cpus", from(config.cpus, .int(RunOptions.defaultCPUs), Value.int)),
            ("memory", from(config.memoryBytes, .bytes(RunOptions.defaultMemoryBytes), Value.bytes)),
            ("disk-size", from(config.diskSize, .described("the image's size"), Value.bytes)),
            ("ssh-keys", from(config.sshKeys, .described("~/.ssh/*.pub and a key per instance"), Value.list)),
            ("user", from(config.user, .described("your user name (wisp when root)"), Value.text)),
            ("accelerator", from(config.accelerator, .text(AcceleratorChoice.auto.rawValue), { Value.text($0.rawValue) })),
            ("mounts", from(config.mounts, .list([]), Value.list)),
            ("mirrors", from(config.mirrors, .list([]), { Value.list($0.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }) })),
        ]
        if json {
            try JSONOutput.print(Dictionary(uniqueKeysWithValues: settings))
            return
        }
        print("config file: \(file)\(config.path == nil ? " (none)" : "")")
        let width = settings.map(\.0.count).max() ?? 0
        for (key, setting) in settings {
            print("\(key.padding(toLength: width + 2, withPad: " ", startingAt: 0))\(setting.value.text)  (\(setting.source))")
        }
    }
}
