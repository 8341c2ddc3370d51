#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Machine
import WispCore
import WispTestSupport
@testable import WispKit

/// Warm templates without a guest OS: a firmware-only VM (OVMF, no disk) under TCG is
/// suspended for real and its state laid out as a template. The checks that need no full
/// read refuse a template whose description, disk or state is wrong; a real QEMU restores
/// the sound state and runs it; a state with one byte flipped is refused (SHA-256 or QEMU's
/// own verdict) and never runs; prune keeps a template an instance is a clone of and removes
/// the others. The guest-facing half (identity, SSH) is in WarmCloneBootTests.
@Suite(.serialized) struct WarmTemplateTests {
    struct Fixture {
        let dir: TemporaryDirectory
        let store: InstanceStore
        let templates: WarmTemplateStore
        let record: InstanceRecord
        let shape: WarmTemplate.Shape
        let booter: InstanceBooter

        init() throws {
            dir = try TemporaryDirectory("wisp-warm")
            store = InstanceLifecycleTests().makeStore(dir)
            templates = WarmTemplateStore(paths: store.paths)
            record = try InstanceLifecycleTests().makeFirmwareInstance(store, name: "fw")
            booter = InstanceBooter(store: store, acceleratorChoice: .tcg, timeout: 60, progress: { _ in })
            shape = WarmTemplate.Shape(image: "sha256:test", architecture: record.spec.architecture.rawValue, cpus: record.spec.cpus,
                                       memoryBytes: record.spec.memoryBytes, bootMode: "uefi", kernelCommandLine: "", entry: nil,
                                       diskBytes: 0, machine: try Boards.for(record.spec.architecture).machineArgument,
                                       accelerator: "tcg", cloudInit: "disk", user: "u")
            // The firmware's state, saved for real, becomes the template's.
            let (_, pid) = try booter.launch(record)
            defer { QEMULauncher.terminate(pid: pid) }
            usleep(500_000)
            let saved = try InstanceSuspender(store: store).suspend("fw", flushGuest: false, notice: { _ in })
            let files = templates.files(shape.key)
            try FileManager.default.createDirectory(atPath: files.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let instance = store.files("fw")
            try FileManager.default.moveItem(atPath: instance.savedState, toPath: files.state)
            try FileManager.default.moveItem(atPath: instance.savedStateDescription, toPath: files.stateDescription)
            try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", files.disk, "64M"])
            chmod(files.disk, 0o400)
            let template = WarmTemplate(shape: shape, user: "u", accelerator: .tcg, buildSeconds: 1, stateBytes: saved.size)
            try AtomicOutput.write(Array(try InstanceStore.encoder.encode(template)), to: files.description, permissions: 0o400)
        }

        /// Runs `body` on a file made writable for it, then read-only again.
        func change(_ path: String, _ body: (String) throws -> Void) rethrows {
            chmod(path, 0o600)
            try body(path)
            chmod(path, 0o400)
        }

        func flipByte(_ path: String, at offset: off_t) {
            change(path) { path in
                let fd = open(path, O_RDWR)
                var byte: UInt8 = 0
                _ = pread(fd, &byte, 1, offset)
                byte ^= 0x5A
                _ = pwrite(fd, &byte, 1, offset)
                close(fd)
            }
        }
    }

    @Test(.timeLimit(.minutes(20))) func checksRefuseWhatIsWrong() throws {
        let f = try Fixture()
        let files = f.templates.files(f.shape.key)
        guard case .success(let template) = f.templates.check(f.shape) else {
            Issue.record("a sound template failed its check: \(f.templates.check(f.shape))")
            return
        }
        #expect(template.key == f.shape.key && template.accelerator == .tcg)

        // Another shape has no template; a description of another shape, a writable disk or
        // state, a truncated state: each refused with its reason.
        var other = f.shape
        other.memoryBytes *= 2
        #expect(f.templates.check(other) == .failure(.missing))
        chmod(files.disk, 0o600)
        #expect(f.templates.check(f.shape) == .failure(.diskMissingOrWritable))
        chmod(files.disk, 0o400)
        chmod(files.state, 0o600)
        #expect(f.templates.check(f.shape) == .failure(.state(.notReadOnly)))
        chmod(files.state, 0o400)
        let size = UInt64(try FileManager.default.attributesOfItem(atPath: files.state)[.size] as? UInt64 ?? 0)
        try f.change(files.state) { path in #expect(truncate(path, off_t(size - 1)) == 0) }
        #expect(f.templates.check(f.shape) == .failure(.state(.truncated(expected: size, actual: size - 1))))
        var described = try InstanceStore.decoder.decode(WarmTemplate.self, from: Data(contentsOf: URL(fileURLWithPath: files.description)))
        described.shape.cpus += 1
        try f.change(files.description) { path in try AtomicOutput.write(Array(try InstanceStore.encoder.encode(described)), to: path, permissions: 0o400) }
        #expect(f.templates.check(f.shape) == .failure(.otherShape))
    }

    @Test(.timeLimit(.minutes(20))) func soundStateRunsFlippedByteNever() throws {
        let f = try Fixture()
        let files = f.templates.files(f.shape.key)
        let clone = WarmClone(store: f.store, templates: f.templates, progress: { _ in })
        var phases = WarmClone.Phases()
        let pid = try clone.restore(f.record, files: f.store.files("fw"), template: files, booter: f.booter, timeout: 30,
                                    phases: &phases, started: Date())
        let qmp = try QMPClient(socketPath: f.store.files("fw").qmpSocket, timeout: 10)
        #expect(try qmp.status() == "running")
        #expect(phases.stateLoaded >= phases.qemuStarted)
        QEMULauncher.terminate(pid: pid)
        InstanceState.repairStale(f.store.files("fw"))

        let size = UInt64(try FileManager.default.attributesOfItem(atPath: files.state)[.size] as? UInt64 ?? 0)
        f.flipByte(files.state, at: off_t(size / 2))
        #expect(f.templates.check(f.shape).isSuccess)  // size and mode cannot tell
        var refused: String? = nil
        do {
            let pid = try clone.restore(f.record, files: f.store.files("fw"), template: files, booter: f.booter, timeout: 30,
                                        phases: &phases, started: Date())
            QEMULauncher.terminate(pid: pid)
        } catch WarmClone.CloneFailure.unusableTemplate(let why) {
            refused = why
        }
        #expect(refused != nil, "a state with a flipped byte was run")
        #expect(InstanceState.probe(f.store.files("fw")).state == .stopped)
    }

    @Test(.timeLimit(.minutes(20))) func pruneKeepsWhatClonesUse() throws {
        let f = try Fixture()
        var used = try f.store.load("fw")
        used.warmTemplate = f.shape.key
        try f.store.save(used)
        var pruned = f.templates.prune(instances: f.store)
        #expect(pruned.removed.isEmpty)
        #expect(pruned.kept.map { $0.key } == [f.shape.key] && pruned.kept.first?.instances == ["fw"])
        #expect(FileManager.default.fileExists(atPath: f.templates.files(f.shape.key).state))
        used.warmTemplate = nil
        try f.store.save(used)
        pruned = f.templates.prune(instances: f.store)
        #expect(pruned.removed == [f.shape.key] && pruned.bytes > 0)
        #expect(!FileManager.default.fileExists(atPath: f.templates.files(f.shape.key).directory))
        #expect(f.templates.keys().isEmpty)
    }
}

extension Result {
    var isSuccess: Bool { if case .success = self { true } else { false } }
}
