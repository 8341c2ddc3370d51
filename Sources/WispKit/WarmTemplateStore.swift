#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Machine
import WispCore

/// The warm templates under `<data>/templates` (owner-only): finding a usable one for a
/// shape, making one (a throwaway instance booted to a settled guest and suspended), removing
/// one that fails its checks, and pruning the ones no instance uses.
///
/// One flock per key (`<key>.lock`) is held while a template is checked, made or removed, so
/// two first runs of one shape make it once: the second waits and then clones it.
public struct WarmTemplateStore: Sendable {
    public var paths: WispPaths

    public init(paths: WispPaths = WispPaths()) { self.paths = paths }

    public var root: String { paths.templates.path }

    public func files(_ key: String) -> WarmTemplateFiles { WarmTemplateFiles(directory: "\(root)/\(key)") }

    /// Why a template is not used: it is removed and made again, never booted.
    public enum Unusable: Error, Sendable, Equatable, CustomStringConvertible {
        case missing
        case unreadableDescription(String)
        case otherShape
        case diskMissingOrWritable
        case state(SavedState.Unusable)

        public var description: String {
            switch self {
            case .missing: "there is none yet"
            case .unreadableDescription(let why): "its template.json is unreadable (\(why))"
            case .otherShape: "its template.json describes another shape"
            case .diskMissingOrWritable: "its frozen disk is missing or writable (it is made read-only)"
            case .state(let why): "its machine state is unusable: \(why)"
            }
        }
    }

    /// Takes the key's lock (waiting for a run that holds it).
    func lock(_ key: String, progress: @Sendable (String) -> Void) throws -> FileLock {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(root, 0o700)
        return try FileLock.exclusive("\(root)/\(key).lock") { _ in
            progress("warm clone: waiting for another run that is making or checking template \(key)")
        }
    }

    /// The template for `shape` if it passes every check that needs no full read (the
    /// state's SHA-256 is checked while QEMU loads it). Lock held by the caller.
    func check(_ shape: WarmTemplate.Shape) -> Result<WarmTemplate, Unusable> {
        let files = files(shape.key)
        guard FileManager.default.fileExists(atPath: files.directory) else { return .failure(.missing) }
        guard let data = FileManager.default.contents(atPath: files.description) else {
            return .failure(.unreadableDescription("\(files.description) cannot be read"))
        }
        let template: WarmTemplate
        do { template = try InstanceStore.decoder.decode(WarmTemplate.self, from: data) } catch {
            return .failure(.unreadableDescription(InstanceStore.describe(error)))
        }
        guard template.formatVersion == WarmTemplate.currentFormatVersion else {
            return .failure(.unreadableDescription("format version \(template.formatVersion)"))
        }
        guard template.shape == shape, template.key == shape.key else { return .failure(.otherShape) }
        var info = stat()
        guard lstat(files.disk, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_mode & 0o222 == 0 else {
            return .failure(.diskMissingOrWritable)
        }
        let expected = SavedState.shape(architecture: shape.architecture, machine: shape.machine, accelerator: template.accelerator.rawValue,
                                        cpus: shape.cpus, memoryBytes: shape.memoryBytes)
        switch SavedState.check(statePath: files.state, descriptionPath: files.stateDescription, expectedShape: expected) {
        case .failure(let why): return .failure(.state(why))
        case .success: return .success(template)
        }
    }

    /// Removes a template's directory (lock held by the caller).
    func remove(_ key: String) {
        let directory = files(key).directory
        // Read-only files in an owner-writable directory: removal needs no chmod.
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Makes the template for `shape` (lock held by the caller): a throwaway instance made by
    /// the ordinary creator in a build directory, booted, cloud-init settled, flushed and
    /// suspended through `InstanceSuspender`; its directory, stripped to what a clone needs
    /// and made read-only, is renamed into place last. Any failure leaves no template.
    func build(_ shape: WarmTemplate.Shape, options: RunOptions, instances: InstanceStore,
               progress: @escaping @Sendable (String) -> Void) async throws -> WarmTemplate {
        let started = Date()
        let key = shape.key
        let buildRoot = buildDirectory(key)
        Self.removeBuild(buildRoot)
        defer { Self.removeBuild(buildRoot) }
        var buildPaths = instances.paths
        buildPaths.dataHome = URL(fileURLWithPath: buildRoot)
        let store = InstanceStore(paths: buildPaths)
        var throwaway = options
        throwaway.name = WarmTemplate.instanceName
        throwaway.forwards = []
        throwaway.sshKeys = []
        throwaway.macAddress = WarmTemplate.macAddress
        throwaway.waitForFinalStage = true
        throwaway.requiresSSH = true
        throwaway.cold = true
        let say: @Sendable (String) -> Void = { progress("template: " + $0) }
        let created = try await InstanceCreator(store: store, progress: say).create(throwaway)
        let files = store.files(created.record.name)
        let booter = InstanceBooter(store: store, acceleratorChoice: options.accelerator, timeout: options.timeout, progress: say)
        var pid: Int32 = 0
        let saved: SavedState
        let booted: InstanceRecord
        do {
            (booted, pid) = try booter.launch(created.record)
            try booter.waitUntilReady(booted, pid: pid, readiness: .init(metadata: created.metadata, waitForSSH: true))
            created.metadata?.stop()
            // Settled: every cloud-init stage done (a clone must not inherit a stage half-run),
            // then the guest's writes on disk before its memory is saved. cloud-init writes
            // result.json when its final stage ends (boot-finished, near that end, where
            // result.json is not kept). Polled with the shell, not `cloud-init status
            // --wait`: that Python start-up alone costs ~4 s under TCG (measured: 5.8 s
            // against 1.6 s for `true` over the same login on a settled guest). The probe's
            // limit bounds the loop. The same login flushes the guest's writes, so the save
            // below needs no second one.
            say("waiting for cloud-init to finish, then saving the machine")
            let settled = "until [ -e /run/cloud-init/result.json ] || [ -e /var/lib/cloud/instance/boot-finished ]; do sleep 0.2; done; sync"
            guard InstanceSSH(record: booted, files: files).probe(settled, limit: options.timeout) else {
                throw WispError(.guestFailed, "the template guest did not answer over SSH after it was ready, or cloud-init did not finish within \(Int(options.timeout)) s")
            }
            created.lock.release()
            saved = try InstanceSuspender(store: store).suspend(booted.name, flushGuest: false, notice: { say($0.trimmingCharacters(in: .newlines)) })
        } catch {
            created.lock.release()
            created.metadata?.stop()
            if pid != 0 { QEMULauncher.terminate(pid: pid, signal: SIGKILL, timeout: 10) }
            throw error
        }
        // Only what a clone needs stays; the rest (runtime files, the host's private key,
        // the kernel, the seed) goes.
        let keep: Set<String> = ["overlay.qcow2", "suspend.state", "suspend.json", "id_ed25519", "id_ed25519.pub", "known_hosts",
                                 "ssh_host_ed25519_key.pub", "OVMF_VARS.fd", "instance.json"]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: files.directory)) ?? [] where !keep.contains(name) {
            try? FileManager.default.removeItem(atPath: "\(files.directory)/\(name)")
        }
        for path in [files.overlay, files.savedStateDescription, files.uefiVars, files.record] where FileManager.default.fileExists(atPath: path) {
            guard chmod(path, 0o400) == 0 else { throw WispError.posix("chmod", path, errno: errno) }
        }
        let template = WarmTemplate(shape: shape, user: booted.user, accelerator: booted.spec.accelerator,
                                    buildSeconds: Date().timeIntervalSince(started), stateBytes: saved.size)
        try AtomicOutput.write(Array(try InstanceStore.encoder.encode(template)), to: "\(files.directory)/template.json", permissions: 0o400)
        chmod(files.directory, 0o700)
        let target = self.files(key).directory
        remove(key)
        guard rename(files.directory, target) == 0 else { throw WispError.posix("rename", target, errno: errno) }
        return template
    }

    /// Where a template is made: short, since QEMU's sockets in the throwaway instance's
    /// directory below it must fit a socket path's 107 bytes.
    func buildDirectory(_ key: String) -> String { "\(root)/.b-\(key.prefix(12))" }

    /// A build directory left by a run that died: its QEMU, if still running, is stopped first.
    static func removeBuild(_ buildRoot: String) {
        let instances = "\(buildRoot)/instances"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: instances)) ?? [] {
            let files = InstanceFiles(directory: "\(instances)/\(name)")
            if let pid = InstanceState.probe(files).pid { QEMULauncher.terminate(pid: pid, signal: SIGKILL, timeout: 10) }
        }
        try? FileManager.default.removeItem(atPath: buildRoot)
    }

    /// What `prune` did.
    public struct Pruned: Sendable {
        public var removed: [String] = []
        /// Templates kept because instances' disks back onto them (key, instance names).
        public var kept: [(key: String, instances: [String])] = []
        public var bytes: UInt64 = 0
    }

    /// The templates on disk (their keys).
    public func keys() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .filter { !$0.hasPrefix(".") && !$0.hasSuffix(".lock") }
            .sorted()
    }

    /// Removes every template no instance's disk backs onto (and dead runs' build
    /// directories); a template a run holds right now is left alone.
    public func prune(instances: InstanceStore) -> Pruned {
        var pruned = Pruned()
        var users: [String: [String]] = [:]
        // An instance whose record cannot be read may be a clone of any template: then no
        // template is removed (its disk would lose what it backs onto).
        var unreadable: [String] = []
        for name in instances.names() {
            guard let record = try? instances.load(name) else { unreadable.append(name); continue }
            if let key = record.warmTemplate { users[key, default: []].append(name) }
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        for entry in entries.sorted() where entry.hasPrefix(".b-") {
            // A build directory is named by its key's first digits; its key's lock says
            // whether a run is making it now.
            guard let lockFile = entries.first(where: { $0.hasSuffix(".lock") && $0.hasPrefix(entry.dropFirst(3)) }),
                  let lock = try? FileLock.attempt("\(root)/\(lockFile)") else { continue }
            pruned.bytes += Self.diskUsage("\(root)/\(entry)")
            Self.removeBuild("\(root)/\(entry)")
            lock.release()
        }
        for key in keys() {
            if let names = users[key] ?? (unreadable.isEmpty ? nil : unreadable) {
                pruned.kept.append((key, names.sorted()))
                continue
            }
            guard let lock = try? FileLock.attempt("\(root)/\(key).lock") else { continue }
            // Checked again under the lock: a run may have cloned it meanwhile.
            let stillUnused = !instances.names().contains { name in
                guard let record = try? instances.load(name) else { return true }
                return record.warmTemplate == key
            }
            if stillUnused {
                pruned.bytes += Self.diskUsage(files(key).directory)
                remove(key)
                pruned.removed.append(key)
            }
            lock.release()
        }
        return pruned
    }

    /// Bytes the files directly in `directory` take on disk.
    static func diskUsage(_ directory: String) -> UInt64 {
        var total: UInt64 = 0
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return 0 }
        for case let name as String in enumerator {
            var info = stat()
            if lstat("\(directory)/\(name)", &info) == 0, (info.st_mode & S_IFMT) == S_IFREG { total += UInt64(info.st_blocks) * 512 }
        }
        return total
    }
}
