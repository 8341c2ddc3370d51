#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Machine
import WispCore

/// `wisp snapshot`: qcow2 internal snapshots of an instance's overlays. Internal rather
/// than external overlays because the snapshot then lives inside the file it snapshots
/// (kept with the instance, removed by `wisp rm`, no chain of files to keep in order),
/// costs only the clusters written after it (qcow2 reference counts), and QEMU can save
/// the guest's memory into the same file (`snapshot-save` with a vmstate) so one tag
/// restores disk and memory together. A running instance is snapshotted through QMP's
/// snapshot jobs (the guest is paused while its memory is written); a stopped one with
/// `qemu-img snapshot`.
public struct InstanceSnapshots: Sendable {
    public var store: InstanceStore

    public init(store: InstanceStore = InstanceStore()) { self.store = store }

    public struct Snapshot: Sendable, Codable, Equatable {
        public var name: String
        /// The guest's memory and devices are in it (taken while running).
        public var withMemory: Bool
        public var memoryBytes: UInt64
        public var createdAt: Date
    }

    /// What a restore did.
    public enum RestoreOutcome: Sendable, Equatable {
        /// The disk only (a snapshot of a stopped instance, restored while stopped).
        case disk
        /// Disk and memory: the guest runs from the snapshot; its clock was set (or not;
        /// nil when SSH was not waited for).
        case diskAndMemory(clock: InstanceSSH.ClockSetting?)
    }

    /// Snapshot names: a letter first (qemu-img takes an all-digit name as a snapshot id).
    public static func validate(snapshot: String) throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
        guard let first = snapshot.first, first.isASCII, first.isLetter, snapshot.count <= 64, snapshot.allSatisfy({ allowed.contains($0) }) else {
            throw WispError.usage("'\(snapshot)' is not a valid snapshot name: use 1 to 64 letters, digits, '-', '_' and '.', starting with a letter")
        }
    }

    /// The instance's writable qcow2 disks, as (QEMU node name, file).
    static func writableDisks(_ record: InstanceRecord) -> [(node: String, path: String)] {
        record.spec.disks.enumerated().compactMap { index, disk in
            !disk.readOnly && disk.format == .qcow2 ? ("disk\(index)", disk.path) : nil
        }
    }

    private func prepare(_ name: String) throws -> (InstanceRecord, InstanceFiles, InstanceLock, InstanceState, Int32?) {
        let record = try store.load(name)
        let files = store.files(name)
        if record.ephemeral {
            throw WispError(.unsupported, "instance \(name) is ephemeral (wisp run --ephemeral): its writes, snapshots included, end when it stops")
        }
        if LibvirtEngine.placement(files) != nil {
            throw LibvirtEngine.ownsDisk(name, verb: "wisp snapshot")
        }
        let lock = try InstanceLock(path: files.lock, name: name)
        let (state, pid) = InstanceState.probe(files)
        return (record, files, lock, state, pid)
    }

    public func list(_ name: String) throws -> [Snapshot] {
        let record = try store.load(name)
        guard let disk = Self.writableDisks(record).first else { return [] }
        // -U: the running QEMU holds the image's write lock; the table is read as it stands.
        let result = try Self.qemuImg(["info", "-U", "--output=json", disk.path])
        guard let info = try? JSONSerialization.jsonObject(with: Data(result.utf8)) as? [String: Any] else {
            throw WispError.corrupt(disk.path, "qemu-img info output", "not a JSON object")
        }
        let snapshots = info["snapshots"] as? [[String: Any]] ?? []
        return snapshots.compactMap { entry in
            guard let tag = entry["name"] as? String else { return nil }
            let memory = (entry["vm-state-size"] as? NSNumber)?.uint64Value ?? 0
            let seconds = (entry["date-sec"] as? NSNumber)?.doubleValue ?? 0
            return Snapshot(name: tag, withMemory: memory > 0, memoryBytes: memory, createdAt: Date(timeIntervalSince1970: seconds))
        }
    }

    public func create(_ name: String, snapshot: String) throws -> Snapshot {
        try Self.validate(snapshot: snapshot)
        let (record, files, lock, state, _) = try prepare(name)
        defer { lock.release() }
        let disks = Self.writableDisks(record)
        guard !disks.isEmpty else { throw WispError(.unsupported, "instance \(name) has no writable qcow2 disk to snapshot") }
        if try list(name).contains(where: { $0.name == snapshot }) {
            throw WispError(.alreadyExists, "instance \(name) already has a snapshot named \(snapshot) (wisp snapshot rm \(name) \(snapshot) first)")
        }
        switch state {
        case .running, .paused:
            if !record.spec.sharedFolders.isEmpty {
                throw WispError(.unsupported, "instance \(name) has shared folders (--mount), whose state QEMU cannot save: stop it to take a disk-only snapshot")
            }
            let qmp = try QMPClient(socketPath: files.qmpSocket, timeout: 10)
            try Self.runJob(qmp, "snapshot-save", arguments: ["tag": snapshot, "vmstate": disks[0].node, "devices": disks.map(\.node)],
                            what: "saving snapshot \(snapshot) of \(name)")
        case .stopped:
            // All disks or none: a tag on some disks only would list as complete (the list
            // reads the first disk) and restore half the machine.
            var done: [String] = []
            do {
                for disk in disks {
                    _ = try Self.qemuImg(["snapshot", "-c", snapshot, disk.path])
                    done.append(disk.path)
                }
            } catch {
                for path in done { _ = try? Self.qemuImg(["snapshot", "-d", snapshot, path]) }
                throw error
            }
        case .suspended:
            throw WispError(.busy, "instance \(name) is suspended: wisp start \(name) (or wisp stop \(name), which discards its memory) first")
        case .crashed, .incomplete:
            throw WispError(.busy, "instance \(name) is \(state.rawValue): stop it first")
        }
        guard let made = try list(name).first(where: { $0.name == snapshot }) else {
            throw WispError(.failed, "snapshot \(snapshot) of \(name) was taken but qemu-img does not list it")
        }
        return made
    }

    /// `waitForSSH` false returns once QEMU runs the restored machine (one without a guest
    /// OS); otherwise ready means SSH answered and set the guest's clock.
    public func restore(_ name: String, snapshot: String, booter: InstanceBooter, waitForSSH: Bool = true) throws -> RestoreOutcome {
        try Self.validate(snapshot: snapshot)
        let (record, files, lock, state, pid) = try prepare(name)
        defer { lock.release() }
        guard let found = try list(name).first(where: { $0.name == snapshot }) else {
            throw WispError.notFound("instance \(name) has no snapshot named \(snapshot) (see wisp snapshot list \(name))")
        }
        let disks = Self.writableDisks(record)
        switch state {
        case .running, .paused:
            guard found.withMemory, let pid else {
                throw WispError(.busy, "snapshot \(snapshot) of \(name) holds its disk only: stop \(name) first (a running guest's disk cannot change under it)")
            }
            let qmp = try QMPClient(socketPath: files.qmpSocket, timeout: 10)
            try Self.runJob(qmp, "snapshot-load", arguments: ["tag": snapshot, "vmstate": disks[0].node, "devices": disks.map(\.node)],
                            what: "loading snapshot \(snapshot) of \(name)")
            if InstanceState.fromQMPStatus((try? qmp.status()) ?? "") == .paused { _ = try? qmp.execute("cont") }
            // The guest's clock went back to the snapshot's time: set it in the readiness login.
            guard waitForSSH else { return .diskAndMemory(clock: nil) }
            guard !record.consoleOnly else { return .diskAndMemory(clock: .noLogin) }
            let clock = try InstanceSuspender(store: store).waitUntilAnswering(record, pid: pid, timeout: booter.timeout)
            return .diskAndMemory(clock: clock)
        case .stopped:
            if found.withMemory {
                // Disk and memory from the snapshot, in the QEMU that boots it.
                let pid = try booter.launchRestoring(record, arguments: ["-loadvm", snapshot])
                guard waitForSSH else { return .diskAndMemory(clock: nil) }
                guard !record.consoleOnly else { return .diskAndMemory(clock: .noLogin) }
                let clock = try InstanceSuspender(store: store).waitUntilAnswering(record, pid: pid, timeout: booter.timeout)
                return .diskAndMemory(clock: clock)
            }
            // Every disk must hold the tag before any is reverted.
            for disk in disks {
                let table = try Self.qemuImg(["snapshot", "-U", "-l", disk.path])
                // Rows are "ID TAG VM-SIZE DATE ..." under two header lines; the ID is numeric.
                let hasTag = table.split(separator: "\n").contains { row in
                    let fields = row.split(whereSeparator: { $0 == " " || $0 == "\t" })
                    return fields.count >= 2 && Int(fields[0]) != nil && fields[1] == snapshot
                }
                guard hasTag else {
                    throw WispError.notFound("\(disk.path): has no snapshot named \(snapshot), which \(name)'s first disk has; nothing was restored")
                }
            }
            for disk in disks { _ = try Self.qemuImg(["snapshot", "-a", snapshot, disk.path]) }
            return .disk
        case .suspended:
            throw WispError(.busy, "instance \(name) is suspended: its saved memory belongs to the disk as it is; wisp stop \(name) (discarding it) first")
        case .crashed, .incomplete:
            throw WispError(.busy, "instance \(name) is \(state.rawValue): stop it first")
        }
    }

    public func remove(_ name: String, snapshot: String) throws {
        try Self.validate(snapshot: snapshot)
        let (record, files, lock, state, _) = try prepare(name)
        defer { lock.release() }
        guard try list(name).contains(where: { $0.name == snapshot }) else {
            throw WispError.notFound("instance \(name) has no snapshot named \(snapshot) (see wisp snapshot list \(name))")
        }
        let disks = Self.writableDisks(record)
        switch state {
        case .running, .paused:
            let qmp = try QMPClient(socketPath: files.qmpSocket, timeout: 10)
            try Self.runJob(qmp, "snapshot-delete", arguments: ["tag": snapshot, "devices": disks.map(\.node)],
                            what: "removing snapshot \(snapshot) of \(name)")
        case .stopped, .suspended:
            // Only the image's snapshot table and reference counts change: a suspended
            // guest's saved memory never saw them (QEMU reads them again on resume).
            for disk in disks { _ = try Self.qemuImg(["snapshot", "-d", snapshot, disk.path]) }
        case .crashed, .incomplete:
            throw WispError(.busy, "instance \(name) is \(state.rawValue): stop it first")
        }
    }

    /// Runs one of QEMU's snapshot jobs to its end; a failed job's error is QEMU's sentence.
    static func runJob(_ qmp: QMPClient, _ command: String, arguments: [String: Any], what: String, timeout: Double = 900) throws {
        let id = "wisp-\(command)-\(getpid())"
        var withID = arguments
        withID["job-id"] = id
        try qmp.execute(command, arguments: withID)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            guard case .array(let jobs) = try qmp.execute("query-jobs") else { throw WispError(.engineFailed, "QEMU's query-jobs answer is not a list") }
            if let job = jobs.first(where: { $0["id"]?.string == id }), job["status"]?.string == "concluded" {
                _ = try? qmp.execute("job-dismiss", arguments: ["id": id])
                if let error = job["error"]?.string { throw WispError(.engineFailed, "QEMU failed \(what): \(error)") }
                return
            }
            guard Date() < deadline else { throw WispError.timedOut("\(what) did not finish within \(Int(timeout)) s") }
            usleep(50_000)
        }
    }

    /// qemu-img's standard output; a failure is its message.
    static func qemuImg(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try HostCommands.tool("qemu-img"))
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw WispError(.processFailed, "qemu-img \(arguments.joined(separator: " ")) failed: \(String(decoding: error, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return String(decoding: output, as: UTF8.self)
    }
}
