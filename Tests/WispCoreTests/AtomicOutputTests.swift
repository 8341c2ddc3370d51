import Foundation
import Testing
import WispCore
import WispTestSupport

/// What a killed writer leaves and who may remove it: temporaries and staging directories
/// are locked while their writer lives, so a sweep removes exactly the abandoned ones.
@Suite struct AtomicOutputTests {
    func names(_ dir: TemporaryDirectory) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    }

    func touch(_ path: String, bytes: Int = 0, age: TimeInterval = 0) throws {
        try Data(repeating: 7, count: bytes).write(to: URL(fileURLWithPath: path))
        if age > 0 {
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-age)], ofItemAtPath: path)
        }
    }

    @Test func abandonedTemporariesAreSweptLiveOnesAreNot() throws {
        let dir = try TemporaryDirectory("wisp-atomic")
        let target = dir.file("out.img")
        let live = try AtomicOutput(path: target)
        try Array("live".utf8).withUnsafeBytes { try live.file.write($0, at: 0) }
        // A temporary whose writer was killed (nobody holds its lock) ...
        try touch(dir.file(".out.img.tmp-dead"), bytes: 4096)
        // ... and files caught between creation and locking: an old one (its writer died in
        // that moment) and a young one (a writer may be in that moment now).
        try touch(dir.file(".out.img.new-old"), age: 7200)
        try touch(dir.file(".out.img.new-young"))
        // Another target's temporary is not this output's business.
        try touch(dir.file(".other.img.tmp-dead"))

        let second = try AtomicOutput(path: target)
        let after = try names(dir)
        #expect(!after.contains(".out.img.tmp-dead") && !after.contains(".out.img.new-old"), "\(after)")
        #expect(after.contains(".out.img.new-young") && after.contains(".other.img.tmp-dead"), "\(after)")
        #expect(after.contains((live.temporaryPath as NSString).lastPathComponent), "a live writer's temporary stays: \(after)")
        try second.commit()
        live.discard()
        #expect(try names(dir) == [".other.img.tmp-dead", ".out.img.new-young", "out.img"])
    }

    /// A cache directory is swept whole: a killed download of one name does not wait for
    /// that name to be written again.
    @Test func cacheDirectoriesAreSweptOfEveryAbandonedTemporary() throws {
        let dir = try TemporaryDirectory("wisp-atomic-cache")
        let live = try AtomicOutput(path: dir.file("b.qcow2"))
        try touch(dir.file(".a.qcow2.tmp-dead"), bytes: 100)
        try touch(dir.file("c.tmp-user"))
        AbandonedWork.sweepTemporaries(in: dir.path)
        let after = try names(dir)
        #expect(after == [(live.temporaryPath as NSString).lastPathComponent, "c.tmp-user"].sorted(), "\(after)")
        live.discard()
    }

    @Test func errorsNameTheTargetAndAFullDiskIsNoSpace() throws {
        let dir = try TemporaryDirectory("wisp-atomic-space")
        let target = dir.file("huge.img")
        #expect {
            try AtomicOutput(path: target, expectedSize: UInt64(1) << 62)
        } throws: { error in
            guard let error = error as? WispError else { return false }
            return error.kind == .noSpace && error.message.hasPrefix("\(target): writing it needs about 4")
                && error.message.hasSuffix("nothing was written (free some space or choose another place)")
        }
        #expect(try names(dir).isEmpty)
        let output = try AtomicOutput(path: target)
        #expect(output.file.displayPath == target)
        #expect(WispError.posix("write", target, errno: ENOSPC).kind == .noSpace)
        #expect(WispError.posix("write", target, errno: EDQUOT).kind == .noSpace)
        #expect(WispError.posix("write", target, errno: EIO).kind == .io)
    }

    @Test func stagingDirectoriesOfDeadProcessesAreSwept() throws {
        let dir = try TemporaryDirectory("wisp-staging")
        let live = try StagingDirectory(in: dir.path)
        try touch(live.path + "/kernel", bytes: 10)
        try FileManager.default.createDirectory(atPath: dir.file(".staging-1-2"), withIntermediateDirectories: false)
        try touch(dir.file(".staging-1-2/vmlinuz"), bytes: 10)
        let next = try StagingDirectory(in: dir.path)
        let after = try names(dir)
        #expect(after.count == 2 && !after.contains(".staging-1-2"), "\(after)")
        #expect(FileManager.default.fileExists(atPath: live.path + "/kernel"))
        next.remove()
        live.remove()
        #expect(try names(dir).isEmpty)
    }

    @Test func fileLocksAreExclusiveAndDroppedOnRelease() throws {
        let dir = try TemporaryDirectory("wisp-lock")
        let path = dir.file(".entry.lock")
        let held = try FileLock.exclusive(path)
        #expect(try FileLock.attempt(path) == nil)
        held.release()
        let again = try #require(try FileLock.attempt(path))
        again.release()
    }
}
