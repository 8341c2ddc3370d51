import Foundation
import WispCore
import Machine

/// `wisp run` from image to ready VM: create the instance, boot it, wait for phone_home and
/// SSH. A failure before the instance is complete leaves nothing behind; a failure while
/// booting stops QEMU and reports the serial tail (the instance stays for `wisp logs`).
public struct Runner: Sendable {
    public var store: InstanceStore
    public var progress: @Sendable (String) -> Void
    /// Told the instance's name as soon as its directory is claimed (before it is complete).
    public var onClaimed: (@Sendable (String) -> Void)?
    /// Byte counts of downloads and pulls, for a progress meter (see `InstanceCreator`).
    public var transfer: TransferProgress?

    public init(store: InstanceStore = InstanceStore(), progress: @escaping @Sendable (String) -> Void,
                onClaimed: (@Sendable (String) -> Void)? = nil) {
        self.store = store
        self.progress = progress
        self.onClaimed = onClaimed
    }

    public func run(_ options: RunOptions) async throws -> InstanceRecord {
        var creator = InstanceCreator(store: store, progress: progress, onClaimed: onClaimed)
        creator.transfer = transfer
        if let uri = options.libvirtURI {
            try LibvirtEngine.checkSupported(options)
            // A daemon that cannot be reached is said before any download or extraction.
            _ = try LibvirtConnection(uri: uri)
            // So is a remote host whose guests Wisp could not log into (no SSH login to it).
            if options.waitForReady { _ = try LibvirtSSHJump.forURI(uri) }
        }
        // A warm clone (WarmClone) when the run can be one: the instance gets the MAC its
        // template's saved NIC has.
        let warmReason = WarmClone.ineligibility(options)
        var createOptions = options
        if warmReason == nil { createOptions.macAddress = WarmTemplate.macAddress }
        let created = try await creator.create(createOptions)
        defer { created.metadata?.stop() }
        let files = store.files(created.record.name)
        // Held since the name was claimed (a second InstanceLock would conflict with it).
        let lock = created.lock
        defer { lock.release() }
        let booter = InstanceBooter(store: store, acceleratorChoice: options.accelerator, timeout: options.timeout, progress: progress)
        if let reason = warmReason ?? WarmClone.ineligibility(created.record) {
            if !reason.isEmpty { progress("warm clone: not used (\(reason)); booting cold") }
        } else {
            let clone = WarmClone(store: store, templates: WarmTemplateStore(paths: store.paths), progress: progress)
            do {
                if let booted = try await clone.run(created, options: options, booter: booter) { return booted }
            } catch {
                // The template's store itself failed (its lock, its directory): boot cold.
                progress("warm clone: \(error); booting cold")
            }
        }
        let booted: InstanceRecord, pid: Int32
        do {
            if let uri = options.libvirtURI {
                booted = try LibvirtEngine.deploy(created.record, files: files, uri: uri, accelerator: options.accelerator, progress: progress)
                try store.save(booted)
                guard let placement = LibvirtEngine.placement(files) else { throw WispError(.failed, "\(files.directory): libvirt.json was not written") }
                try LibvirtEngine.start(placement, files: files)
                pid = 0
            } else {
                (booted, pid) = try booter.launch(created.record)
            }
        } catch {
            // Never booted: nothing in it is worth keeping.
            lock.release()
            if let placement = LibvirtEngine.placement(files) { try? LibvirtEngine.remove(placement) }
            try? store.remove(created.record.name)
            throw error
        }
        // A live system without cloud-init is ready when QEMU runs: its way in is the console.
        guard options.waitForReady, !booted.consoleOnly else { return booted }
        // A guest of a remote libvirt host is reached through an SSH login to that host
        // (LibvirtSSHJump), but its phone_home cannot reach Wisp's metadata server here: for
        // such a guest, readiness is the SSH login with the host key Wisp made, alone.
        let remote = options.libvirtURI.map { !LibvirtEngine.isLocal($0) } ?? false
        do {
            try booter.waitUntilReady(booted, pid: pid, readiness: .init(metadata: remote ? nil : created.metadata, waitForSSH: true))
        } catch let error as WispError where error.kind == .timedOut {
            throw error
        } catch {
            try? InstanceController(store: store).stopLocked(files, force: true, timeout: 0)
            throw error
        }
        return booted
    }
}
