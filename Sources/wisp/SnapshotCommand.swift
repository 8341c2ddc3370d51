import ArgumentParser
import Foundation
import WispCore
import WispKit

struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot", abstract: "Take, list, restore and remove snapshots of an instance.",
        discussion: """
        Snapshots are qcow2 internal snapshots inside the instance's overlay: they cost only \
        what changed after them, stay in the instance directory and go with wisp rm. One \
        taken while the instance runs holds its memory too (the guest pauses while it is \
        written); one taken while it is stopped holds the disk. Restoring a snapshot with \
        memory brings the guest back running as it was (its clock set); a disk-only one is \
        restored while the instance is stopped.

        Examples:
          wisp snapshot create web before-upgrade
          wisp snapshot list web
          wisp snapshot restore web before-upgrade
          wisp snapshot rm web before-upgrade
        """,
        subcommands: [Create.self, List.self, Restore.self, Remove.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Snapshot an instance's disk (and memory, when it runs).",
            discussion: "Example:\n  wisp snapshot create web before-upgrade")
        @Argument(help: "Instance name.") var name: String
        @Argument(help: "Snapshot name (a letter first; letters, digits, '-', '_', '.').") var snapshot: String

        func run() async throws {
            let started = Date()
            let made = try InstanceSnapshots().create(name, snapshot: snapshot)
            FileOutput.standardError(String(format: "%@: snapshot %@ taken in %.1f s (%@)\n", name, snapshot,
                                            Date().timeIntervalSince(started), made.withMemory ? "disk and memory" : "disk"))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List an instance's snapshots.",
            discussion: "Example:\n  wisp snapshot list web")
        @Argument(help: "Instance name.") var name: String

        func run() async throws {
            let snapshots = try InstanceSnapshots().list(name)
            let formatter = ISO8601DateFormatter()
            var lines = ["NAME\tMEMORY\tCREATED"]
            for s in snapshots {
                lines.append("\(s.name)\t\(s.withMemory ? ByteSize.format(s.memoryBytes) : "-")\t\(formatter.string(from: s.createdAt))")
            }
            print(lines.joined(separator: "\n"))
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Bring an instance's disk (and memory) back to a snapshot.",
            discussion: """
            A snapshot with memory is restored whether the instance runs or is stopped (it \
            runs afterwards); a disk-only snapshot needs the instance stopped.

            Example:
              wisp snapshot restore web before-upgrade
            """)
        @Argument(help: "Instance name.") var name: String
        @Argument(help: "Snapshot name.") var snapshot: String
        @Option(help: "Seconds to wait for SSH after restoring memory.") var timeout: Double = 300

        func run() async throws {
            let store = InstanceStore()
            let booter = InstanceBooter(store: store, timeout: timeout, progress: RunProgress.report)
            let started = Date()
            let outcome = try InstanceSnapshots(store: store).restore(name, snapshot: snapshot, booter: booter)
            switch outcome {
            case .disk:
                FileOutput.standardError("\(name): disk restored to snapshot \(snapshot)\n")
            case .diskAndMemory(let clock):
                if clock == .refused {
                    FileOutput.standardError("wisp: \(name): could not set the guest's clock (sudo date refused)\n")
                }
                FileOutput.standardError(String(format: "%@: restored to snapshot %@ and ready in %.1f s; wisp ssh %@\n", name, snapshot,
                                                Date().timeIntervalSince(started), name))
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rm", abstract: "Remove a snapshot (its clusters are freed).",
            discussion: "Example:\n  wisp snapshot rm web before-upgrade")
        @Argument(help: "Instance name.") var name: String
        @Argument(help: "Snapshot name.") var snapshot: String

        func run() async throws {
            try InstanceSnapshots().remove(name, snapshot: snapshot)
        }
    }
}
