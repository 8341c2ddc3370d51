#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Machine
import WispCore
import WispTestSupport
@testable import WispKit

/// The saved state's checks against a real QEMU: a firmware-only VM (OVMF, no disk) under
/// TCG is suspended for real (QEMU's migration stream through a descriptor passed over
/// QMP), then its state is damaged in each way the resume must catch, and the resume is
/// run: each must discard the state and choose the cold boot, with the reason; a sound
/// state is loaded by a real QEMU. The guest-facing half (SSH, clock) is in the boot suite.
@Suite(.serialized) struct InstanceSuspendTests {
    struct Fixture {
        let dir: TemporaryDirectory
        let store: InstanceStore
        let record: InstanceRecord
        let files: InstanceFiles
        /// A pristine copy of the state and its description, for each case to damage.
        let pristineState: String
        let pristineDescription: String
        let booter: InstanceBooter

        init() throws {
            dir = try TemporaryDirectory("wisp-suspend")
            store = InstanceStore(paths: WispPaths(environment: ["HOME": dir.path, "XDG_DATA_HOME": dir.file("data"), "XDG_CACHE_HOME": dir.file("cache")]))
            record = try InstanceLifecycleTests().makeFirmwareInstance(store, name: "sus")
            files = store.files("sus")
            booter = InstanceBooter(store: store, acceleratorChoice: .tcg, timeout: 60, progress: { _ in })
            let (_, pid) = try booter.launch(record)
            defer { QEMULauncher.terminate(pid: pid) }
            usleep(500_000)  // the firmware runs a little: its RAM is not all zero pages
            let saved = try InstanceSuspender(store: store).suspend("sus", flushGuest: false, notice: { _ in })
            #expect(!QEMULauncher.isQEMU(pid: pid))
            #expect(saved.size > 0)
            pristineState = dir.file("pristine.state")
            pristineDescription = dir.file("pristine.json")
            try FileManager.default.copyItem(atPath: files.savedState, toPath: pristineState)
            try FileManager.default.copyItem(atPath: files.savedStateDescription, toPath: pristineDescription)
        }

        /// Puts the pristine state back, then lets `damage` change the state file (made
        /// writable for it and read-only again after) or the description.
        func reset(damage: (String) throws -> Void = { _ in }, description: ((inout SavedState) -> Void)? = nil) throws {
            InstanceSuspender.discardState(files)
            try FileManager.default.copyItem(atPath: pristineState, toPath: files.savedState)
            chmod(files.savedState, 0o600)
            try damage(files.savedState)
            chmod(files.savedState, 0o400)
            if let description {
                var saved = try InstanceStore.decoder.decode(SavedState.self, from: Data(contentsOf: URL(fileURLWithPath: pristineDescription)))
                description(&saved)
                try AtomicOutput.write(try saved.encoded(), to: files.savedStateDescription, permissions: 0o600)
            } else {
                try FileManager.default.copyItem(atPath: pristineDescription, toPath: files.savedStateDescription)
            }
        }

        /// Runs the resume and returns the reason the cold boot was chosen (nil: it was not).
        func resumeChoosingColdBoot() throws -> SavedState.Unusable? {
            let lock = try InstanceLock(path: files.lock, name: record.name)
            defer { lock.release() }
            #expect(InstanceState.probe(files).state == .suspended)
            let notices = LockedValue<[String]>([])
            let (_, outcome) = try InstanceSuspender(store: store).resume(record, booter: booter, timeout: 5,
                                                                          notice: { line in notices.withLock { $0.append(line) } },
                                                                          coldBoot: { record })
            guard case .bootedCold(let why) = outcome else { return nil }
            // One line, the state gone, no QEMU left behind, the disk-side files kept.
            #expect(notices.withLock { $0 }.count == 1)
            #expect(notices.withLock { $0 }.first?.hasSuffix("booting it cold (the disk is kept)\n") == true)
            #expect(!FileManager.default.fileExists(atPath: files.savedState))
            #expect(!FileManager.default.fileExists(atPath: files.savedStateDescription))
            #expect(InstanceState.probe(files).state == .stopped)
            #expect(FileManager.default.fileExists(atPath: files.uefiVars))
            return why
        }
    }

    static func flipByte(_ path: String, at offset: off_t) throws {
        let fd = open(path, O_RDWR)
        defer { close(fd) }
        var byte: UInt8 = 0
        #expect(pread(fd, &byte, 1, offset) == 1)
        byte ^= 0xFF
        #expect(pwrite(fd, &byte, 1, offset) == 1)
    }

    @Test func suspendWritesAnOwnerOnlyReadOnlyCheckedState() throws {
        let f = try Fixture()
        var info = stat()
        #expect(stat(f.files.savedState, &info) == 0 && info.st_mode & 0o777 == 0o400)
        #expect(stat(f.files.savedStateDescription, &info) == 0 && info.st_mode & 0o777 == 0o600)
        let saved = try InstanceStore.decoder.decode(SavedState.self, from: Data(contentsOf: URL(fileURLWithPath: f.files.savedStateDescription)))
        // The recorded digest is sha256sum's.
        let sum = try ToolRunner.run("sha256sum", [f.files.savedState]).stdoutText.split(separator: " ").first.map(String.init)
        #expect(saved.sha256 == sum)
        let prefix = try Self.qemuVersionPrefix()
        #expect(saved.qemuVersion.hasPrefix(prefix))
        #expect(saved.machine == X86_64Board().machineArgument)
        #expect(InstanceState.probe(f.files).state == .suspended)
        #expect(InstanceController(store: f.store).list().first?.state == .suspended)

        // A sound state is loaded by a real QEMU (which stays paused, -S) and checks out.
        guard case .success(let checked) = SavedState.check(statePath: f.files.savedState, descriptionPath: f.files.savedStateDescription,
                                                            expectedShape: try InstanceSuspender.shape(of: f.record)) else {
            Issue.record("the intact state was refused")
            return
        }
        #expect(checked.verifyChecksum(of: f.files.savedState) == nil)
        let pid = try f.booter.launchRestoring(f.record, arguments: ["-incoming", "defer", "-S"])
        defer { QEMULauncher.terminate(pid: pid) }
        let qmp = try QMPClient(socketPath: f.files.qmpSocket)
        #expect(checked.check(runningQEMU: qmp.qemuVersion) == nil)
        try QMPMigration.load(qmp, from: f.files.savedState)
        #expect(try qmp.status() == "paused")
        QEMULauncher.terminate(pid: pid)

        // wisp stop of a suspended instance discards the state and says so.
        #expect(try InstanceController(store: f.store).stop("sus", force: false) == .discardedSavedState)
        #expect(!FileManager.default.fileExists(atPath: f.files.savedState))
        #expect(InstanceState.probe(f.files).state == .stopped)
    }

    /// "7.2" from `qemu-system-x86_64 --version`'s "QEMU emulator version 7.2.19 (...)".
    static func qemuVersionPrefix() throws -> String {
        let text = try ToolRunner.run("qemu-system-x86_64", ["--version"]).stdoutText
        let version = text.split(separator: " ").dropFirst(3).first.map(String.init) ?? ""
        return version.split(separator: ".").prefix(2).joined(separator: ".")
    }

    @Test func damagedStatesChooseTheColdBoot() throws {
        let f = try Fixture()
        let size = try #require(try FileManager.default.attributesOfItem(atPath: f.pristineState)[.size] as? NSNumber).intValue

        try f.reset()
        try FileManager.default.removeItem(atPath: f.files.savedState)
        #expect(try f.resumeChoosingColdBoot() == .missing(f.files.savedState))

        try f.reset(damage: { #expect(truncate($0, size / 2) == 0) })
        #expect(try f.resumeChoosingColdBoot() == .truncated(expected: UInt64(size), actual: UInt64(size / 2)))

        // Another QEMU's state: only the running QEMU's greeting can tell.
        try f.reset(description: { $0.qemuVersion = "6.2.0" })
        guard case .otherQEMU(let saved, let now)? = try f.resumeChoosingColdBoot() else {
            Issue.record("a state from QEMU 6.2.0 was not refused as another QEMU's")
            return
        }
        let prefix = try Self.qemuVersionPrefix()
        #expect(saved == "6.2.0" && now.hasPrefix(prefix))

        // Another machine shape (the instance's memory changed since).
        try f.reset(description: { $0.memoryBytes = 512 << 20 })
        guard case .otherMachine? = try f.resumeChoosingColdBoot() else {
            Issue.record("a state for 512 MiB was used for a 256 MiB machine")
            return
        }

        // A changed byte in the last page QEMU reads: its size is right, QEMU loads it,
        // the SHA-256 does not match: never run.
        try f.reset(damage: { try Self.flipByte($0, at: off_t(size - 4096 - 100)) })
        let flipped = try f.resumeChoosingColdBoot()
        #expect(flipped == .checksumMismatch || { if case .refusedByQEMU? = flipped { return true }; return false }())

        // Cut short with a description that matches the cut file: only QEMU can tell, and
        // it refuses (a 7.2 QEMU exits when an incoming stream fails).
        let cut = size / 3
        try f.reset(damage: { #expect(truncate($0, cut) == 0) }, description: { _ in })
        let cutDigest = try SavedState.sha256(of: f.files.savedState)
        try AtomicOutput.write(try { var s = try InstanceStore.decoder.decode(SavedState.self, from: Data(contentsOf: URL(fileURLWithPath: f.pristineDescription)))
            s.size = UInt64(cut); s.sha256 = cutDigest; return try s.encoded() }(), to: f.files.savedStateDescription, permissions: 0o600)
        guard case .refusedByQEMU? = try f.resumeChoosingColdBoot() else {
            Issue.record("QEMU loaded a stream cut at a third")
            return
        }

        // Made writable after the save: refused without reading it.
        try f.reset()
        chmod(f.files.savedState, 0o600)
        #expect(try f.resumeChoosingColdBoot() == .notReadOnly)

        // A description from a newer wisp, or not JSON at all.
        try f.reset()
        try AtomicOutput.write(Array(#"{"formatVersion": 9}"#.utf8), to: f.files.savedStateDescription, permissions: 0o600)
        #expect(try f.resumeChoosingColdBoot() == .unknownFormat(9))
        try f.reset()
        try AtomicOutput.write(Array("\u{0}garbage".utf8), to: f.files.savedStateDescription, permissions: 0o600)
        guard case .unreadableDescription? = try f.resumeChoosingColdBoot() else {
            Issue.record("a garbage description was accepted")
            return
        }
    }
}
