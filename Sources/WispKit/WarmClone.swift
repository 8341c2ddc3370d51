#if canImport(Glibc)
import Glibc
#endif
import CloudInit
import DiskImage
import Foundation
import Machine
import WispCore

/// `wisp run` as a warm clone (issue 19, part 3): the user's instance, made by the ordinary
/// creator (its own name, keys, host keys, seed and port forwards), gets an overlay on a
/// template's frozen disk; QEMU starts with `-incoming defer -S`, loads the template's
/// state (its SHA-256 checked while it loads) and runs. Wisp then logs in with the
/// template's key, checking the template's host key, and runs one root script that gives
/// the clone its own identity; the guest is ready when it answers with the instance's own
/// key and host key. Anything a template cannot serve boots cold, said in one line.
struct WarmClone: Sendable {
    var store: InstanceStore
    var templates: WarmTemplateStore
    var progress: @Sendable (String) -> Void

    /// Why a run cannot be a clone, from its options alone; nil: it may be. An empty reason
    /// is said nowhere (`--cold`: the user asked).
    static func ineligibility(_ options: RunOptions) -> String? {
        if options.cold { return "" }
        if options.libvirtURI != nil { return "the libvirt engine boots it" }
        if !options.waitForReady { return "--detach and --console return before the guest is ready" }
        if !options.mounts.isEmpty { return "shared folders (--mount) cannot be part of a saved machine" }
        if options.userData != nil { return "--user-data runs in a freshly booted cloud-init" }
        if !options.extraDisks.isEmpty { return "--disk changes the machine's devices" }
        if options.ephemeral { return "--ephemeral instances start from the image at every boot" }
        if options.provisioning == .systemd { return "a guest provisioned by systemd credentials has no cloud-init to clone" }
        return nil
    }

    /// Why the instance as made cannot be a clone (what only the image tells); nil: it may.
    static func ineligibility(_ record: InstanceRecord) -> String? {
        if record.provisioning != .cloudInit { return "the image has no cloud-init (provisioned by systemd credentials)" }
        if record.spec.cdrom != nil || record.consoleOnly { return "an ISO image boots from its medium" }
        if record.bootMode == .bios { return "a BIOS-booted guest" }
        let disks = record.cloudInit == .disk ? 2 : 1
        if record.spec.disks.count != disks { return "an image with several disks" }
        return nil
    }

    /// The accelerator a run would pick, as `InstanceBooter.launch` does (without its trial).
    static func plannedAccelerator(_ choice: AcceleratorChoice, guest: GuestArchitecture, cacheHome: String) -> Accelerator {
        switch choice {
        case .tcg: return .tcg
        case .kvm: return .kvm
        case .auto: return GuestArchitecture.host == guest ? AcceleratorProbe(cacheDirectory: cacheHome).choose() : .tcg
        }
    }

    /// The template shape of an instance as the creator made it.
    static func shape(of record: InstanceRecord, options: RunOptions, accelerator: Accelerator) throws -> WarmTemplate.Shape {
        let image: String
        if let digest = record.baseImage?.sha256 {
            image = "sha256:" + digest
        } else {
            var info = stat()
            guard stat(record.baseImagePath, &info) == 0 else { throw WispError.posix("stat", record.baseImagePath, errno: errno) }
            image = "file:\(record.baseImagePath) \(info.st_size) bytes, inode \(info.st_ino), modified \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
        }
        var commandLine = ""
        if case .direct(let direct) = record.spec.boot { commandLine = direct.commandLine }
        return WarmTemplate.Shape(image: image, architecture: record.spec.architecture.rawValue, cpus: record.spec.cpus,
                                  memoryBytes: record.spec.memoryBytes, bootMode: record.bootMode.rawValue, kernelCommandLine: commandLine,
                                  entry: options.entry, diskBytes: options.diskSize ?? 0,
                                  machine: try Boards.for(record.spec.architecture).machineArgument,
                                  accelerator: accelerator.rawValue, cloudInit: record.cloudInit.rawValue, user: record.user)
    }

    /// Where a clone's time went, in seconds from the start of the restore.
    struct Phases: Sendable {
        var qemuStarted = 0.0
        var stateLoaded = 0.0
        /// The template's login answered (its shell ran).
        var answered = 0.0
        var identity = 0.0
        var ready = 0.0
    }

    /// Runs `created` as a clone, making the template first when there is none. Returns the
    /// booted record, or nil when the run must boot cold (the reason was said, and the
    /// instance's overlay is a fresh one on the base image again).
    func run(_ created: InstanceCreator.Created, options: RunOptions, booter: InstanceBooter) async throws -> InstanceRecord? {
        let record = created.record
        let accelerator = Self.plannedAccelerator(options.accelerator, guest: record.spec.architecture, cacheHome: store.paths.cacheHome.path)
        let shape = try Self.shape(of: record, options: options, accelerator: accelerator)
        // A template whose state fails a check is removed and made again once; a second
        // failure in one run boots cold.
        for attempt in 0..<2 {
            let lock = try templates.lock(shape.key, progress: progress)
            var template: WarmTemplate
            switch templates.check(shape) {
            case .success(let found): template = found
            case .failure(let why):
                // Clones' overlays name the template's disk by its path: a template made
                // again at that path would silently change what their disks sit on.
                if let users = inUse(shape.key, besides: record.name) {
                    lock.release()
                    progress("warm clone: template \(shape.key) \(why == .missing ? "is gone" : "cannot be used (\(why))"), but the disks of \(users) back onto it, so it is neither removed nor made again; booting cold (wisp rm them, then wisp images prune)")
                    return nil
                }
                if why != .missing {
                    progress("warm clone: template \(shape.key) removed: \(why)")
                    templates.remove(shape.key)
                }
                progress("warm clone: making the template for this image and shape (once; later runs clone it, --cold skips it)")
                do {
                    template = try await templates.build(shape, options: options, instances: store, progress: progress)
                } catch {
                    lock.release()
                    progress("warm clone: the template could not be made (\(error)); booting cold")
                    return nil
                }
                progress("warm clone: template \(shape.key) made in \(String(format: "%.1f", template.buildSeconds)) s")
            }
            do {
                return try clone(created, template: template, lock: lock, booter: booter, timeout: options.timeout)
            } catch let failure as CloneFailure {
                switch failure {
                case .unusableTemplate(let why):
                    let relock = try templates.lock(shape.key, progress: progress)
                    if let users = inUse(shape.key, besides: record.name) {
                        relock.release()
                        progress("warm clone: template \(shape.key) cannot be used (\(why)), but the disks of \(users) back onto it, so it is neither removed nor made again; booting cold")
                        return nil
                    }
                    templates.remove(shape.key)
                    relock.release()
                    progress("warm clone: template \(shape.key) removed, never booted: \(why)" + (attempt == 0 ? "; making it again" : ""))
                case .failed(let why):
                    progress("warm clone: \(why); booting cold")
                    return nil
                }
            }
        }
        progress("warm clone: no usable template; booting cold")
        return nil
    }

    /// The other instances whose disks may back onto template `key`, as a list for a
    /// sentence, or nil when none does. An instance whose record cannot be read counts: its
    /// disk may be one of them.
    private func inUse(_ key: String, besides name: String) -> String? {
        let users = store.names().filter { other in
            guard other != name else { return false }
            guard let record = try? store.load(other) else { return true }
            return record.warmTemplate == key
        }
        return users.isEmpty ? nil : users.sorted().joined(separator: ", ")
    }

    enum CloneFailure: Error {
        /// The template failed a check (its state's checksum, QEMU's version or verdict):
        /// removed by the caller. The instance's overlay is back on the base image.
        case unusableTemplate(String)
        /// Anything else: the instance boots cold (its overlay is back on the base image).
        case failed(String)
    }

    /// The clone proper (the template's lock held by the caller, released here once the
    /// instance's record names the template, which `prune` then keeps).
    func clone(_ created: InstanceCreator.Created, template: WarmTemplate, lock: FileLock,
               booter: InstanceBooter, timeout: Double) throws -> InstanceRecord {
        let tfiles = templates.files(template.key)
        var record = created.record
        let files = store.files(record.name)
        let original = record
        // The creator's overlay size (--disk-size), for a fall back to a cold boot.
        let originalSize = try? BackingChain.resolve(path: files.overlay, format: .qcow2,
                                                     policy: .confined(allowedDirectories: record.allowedBackingDirectories + [(record.baseImagePath as NSString).deletingLastPathComponent])).top.virtualSize
        do {
            // The record names the template before the overlay sits on it: a run killed in
            // between leaves an instance prune counts as the template's user, never a disk
            // on a template prune thinks unused.
            record.allowedBackingDirectories.append(tfiles.directory)
            record.warmTemplate = template.key
            record.spec.accelerator = template.accelerator
            try store.save(record)
            try rebase(files: files, record: original, onto: tfiles.disk, format: .qcow2, extraAllowed: [tfiles.directory])
            if case .firmware = record.spec.boot {
                try AtomicOutput.copy(from: tfiles.uefiVars, to: files.uefiVars, permissions: 0o600)
            }
        } catch {
            lock.release()
            try? reset(files: files, to: original, size: originalSize)
            throw CloneFailure.failed("the clone's disk could not be made (\(error))")
        }
        lock.release()
        var pid: Int32 = 0
        do {
            var phases = Phases()
            let started = Date()
            pid = try restore(record, files: files, template: tfiles, booter: booter, timeout: timeout, phases: &phases, started: started)
            progress("\(record.name): restored from template \(template.key); giving it its own identity")
            let answered = try giveIdentity(created, record: record, template: template, templateFiles: tfiles, pid: pid, timeout: timeout)
            phases.answered = answered.timeIntervalSince(started)
            phases.identity = Date().timeIntervalSince(started)
            try waitForOwnLogin(record, files: files, pid: pid, deadline: started.addingTimeInterval(timeout))
            phases.ready = Date().timeIntervalSince(started)
            progress(String(format: "\(record.name): warm clone ready in %.2f s (QEMU started %.2f, state loaded %.2f, template login %.2f, identity set %.2f, own login %.2f)",
                            phases.ready, phases.qemuStarted, phases.stateLoaded, phases.answered, phases.identity, phases.ready))
            return record
        } catch {
            if pid != 0 { QEMULauncher.terminate(pid: pid, signal: SIGKILL, timeout: 10) }
            InstanceState.repairStale(files)
            try? reset(files: files, to: original, size: originalSize)
            if let failure = error as? CloneFailure { throw failure }
            throw CloneFailure.failed("the clone failed (\(error))")
        }
    }

    /// Replaces the instance's overlay with a fresh one backed by `disk`.
    private func rebase(files: InstanceFiles, record: InstanceRecord, onto disk: String, format: ImageFormat?, extraAllowed: [String],
                        size: UInt64? = nil) throws {
        let baseDirectory = (record.baseImagePath as NSString).deletingLastPathComponent
        let chain = try BackingChain.resolve(path: disk, format: format,
                                             policy: .confined(allowedDirectories: record.allowedBackingDirectories + [baseDirectory] + extraAllowed))
        let fresh = files.overlay + ".clone"
        unlink(fresh)
        try RunIntegration.createOverlay(base: chain, overlay: fresh, size: size ?? chain.top.virtualSize)
        guard rename(fresh, files.overlay) == 0 else {
            let code = errno
            unlink(fresh)
            throw WispError.posix("rename", files.overlay, errno: code)
        }
    }

    /// The instance as the creator made it: a fresh overlay on the base image, its record.
    private func reset(files: InstanceFiles, to original: InstanceRecord, size: UInt64?) throws {
        try rebase(files: files, record: original, onto: original.baseImagePath, format: original.baseImage?.format, extraAllowed: [], size: size)
        try store.save(original)
    }

    /// Loads the template's state into a QEMU started for it (`SavedStateLoader`: the guest
    /// runs only when the stream loaded and its SHA-256 matched). Returns QEMU's pid.
    func restore(_ record: InstanceRecord, files: InstanceFiles, template: WarmTemplateFiles, booter: InstanceBooter,
                 timeout: Double, phases: inout Phases, started: Date) throws -> Int32 {
        let saved: SavedState
        switch SavedState.check(statePath: template.state, descriptionPath: template.stateDescription,
                                expectedShape: try InstanceSuspender.shape(of: record)) {
        case .failure(let why): throw CloneFailure.unusableTemplate(why.description)
        case .success(let s): saved = s
        }
        switch try SavedStateLoader.load(saved, from: template.state, into: record, files: files, booter: booter,
                                         timeout: timeout, started: started) {
        case .unusable(let why): throw CloneFailure.unusableTemplate(why.description)
        case .stalled(let error): throw error
        case .running(let pid, let qemuStarted, let stateLoaded):
            phases.qemuStarted = qemuStarted
            phases.stateLoaded = stateLoaded
            return pid
        }
    }

    /// One login with the template's key, its host key checked strictly, that sets the
    /// clock and runs `CloneIdentity`'s script as root.
    private func giveIdentity(_ created: InstanceCreator.Created, record: InstanceRecord, template: WarmTemplate,
                              templateFiles: WarmTemplateFiles, pid: Int32, timeout: Double) throws -> Date {
        let files = store.files(record.name)
        var templateRecord = record
        templateRecord.name = WarmTemplate.instanceName
        templateRecord.user = template.user
        let ssh = InstanceSSH(record: templateRecord, files: templateFiles.instance)
        let hostPublic = try String(contentsOfFile: files.hostKey + ".pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let hostPrivate = try String(contentsOfFile: files.hostKey, encoding: .utf8)
        let templateKey = try String(contentsOfFile: templateFiles.privateKey + ".pub", encoding: .utf8)
        let identity = CloneIdentity(hostname: record.hostname, machineID: CloneIdentity.randomHex(bytes: 16),
                                     instanceID: created.instanceID ?? "wisp-\(record.name)-\(UInt32.random(in: 0...UInt32.max))",
                                     user: record.user, authorizedKeys: created.authorizedKeys,
                                     hostKeys: [SSHHostKey(type: .ed25519, privateKey: hostPrivate, publicKey: hostPublic)] + created.otherHostKeys,
                                     templateKeyBlob: String(templateKey.split(separator: " ").dropFirst().first ?? ""),
                                     entropy: CloneIdentity.randomHex(bytes: 64))
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            switch identity.run(over: ssh) {
            case .done(let answered): return answered
            case .scriptFailed(let output):
                throw CloneFailure.failed("the identity script failed in the clone: \(output.suffix(400))")
            case .noAnswer:
                guard QEMULauncher.isQEMU(pid: pid) else { throw CloneFailure.failed("QEMU exited while \(record.name) was being restored (see \(files.qemuLog))") }
                guard Date() < deadline else { throw CloneFailure.failed("the restored guest did not answer over SSH within \(Int(timeout)) s") }
                usleep(100_000)
            }
        }
    }

    /// Readiness: one login with the instance's own key, its own host key checked strictly.
    private func waitForOwnLogin(_ record: InstanceRecord, files: InstanceFiles, pid: Int32, deadline: Date) throws {
        let ssh = InstanceSSH(record: record, files: files)
        while !ssh.probe() {
            guard QEMULauncher.isQEMU(pid: pid) else { throw CloneFailure.failed("QEMU exited after \(record.name)'s identity was set (see \(files.qemuLog))") }
            guard Date() < deadline else { throw CloneFailure.failed("the clone did not answer with its own host key and key in time") }
            usleep(100_000)
        }
    }
}
