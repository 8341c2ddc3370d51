import Foundation
import MetadataService
import Testing
import WispCore
import WispTestSupport

/// `kill -9` of `wisp` in the middle of each command that writes, then the same command
/// again: it completes, and nothing of the killed one is visible (`wisp list`, the cache,
/// the output's directory). The kill lands while the output is written whole into its
/// temporary and fsync is about to make it durable (see `killWispAtFirstFsync`), the
/// latest moment before the rename, so the temporary is as big as it gets.
@Suite(.serialized) struct KilledCommandTests {
    @Test func convertKilledThenRepeated() throws {
        let box = try FaultBox("wisp-kill-convert")
        let input = try FullDiskTests.randomRawImage(box)
        let before = try sha256(input)
        try FileManager.default.createDirectory(atPath: box.dir.file("out"), withIntermediateDirectories: false)
        let output = box.dir.file("out/disk.qcow2")
        let arguments = ["image", "convert", "-O", "qcow2", input, output]

        try killWispAtFirstFsync(arguments, environment: box.environment)
        #expect(!FileManager.default.fileExists(atPath: output))
        #expect(leftovers(box.dir.file("out")).count == 1, "the killed convert left its temporary: \(allEntries(box.dir.file("out")))")

        let again = try box.wisp(arguments)
        #expect(again.status == 0, "\(again.stderrText)")
        #expect(allEntries(box.dir.file("out")) == ["disk.qcow2"])
        try ToolRunner.check("qemu-img", ["compare", "-q", input, output])
        #expect(try sha256(input) == before)
    }

    @Test func seedKilledThenRepeated() throws {
        let box = try FaultBox("wisp-kill-seed")
        try FileManager.default.createDirectory(atPath: box.dir.file("out"), withIntermediateDirectories: false)
        let output = box.dir.file("out/seed.iso")
        let arguments = ["seed", output, "--user", "me", "--hostname", "killed", "--allow-no-login"]
        try killWispAtFirstFsync(arguments, environment: box.environment)
        #expect(!FileManager.default.fileExists(atPath: output))
        #expect(leftovers(box.dir.file("out")).count == 1, "\(allEntries(box.dir.file("out")))")

        let again = try box.wisp(arguments)
        #expect(again.status == 0, "\(again.stderrText)")
        #expect(allEntries(box.dir.file("out")) == ["seed.iso"])
        let listing = try ToolRunner.check("isoinfo", ["-J", "-f", "-i", output]).stdoutText
        #expect(listing.contains("/user-data") && listing.contains("/meta-data"), "\(listing)")
    }

    /// Killed while writing the overlay, after the name was claimed and before
    /// instance.json: `wisp list` shows the instance incomplete; the same `wisp run --name`
    /// reclaims the name (its creator is gone: nobody holds its lock) and completes.
    @Test func runKilledWhileCreatingThenRepeated() throws {
        let box = try FaultBox("wisp-kill-run")
        let base = try box.blankDisk()
        let before = try sha256(base)
        let arguments = ["run", "--boot", "uefi", "--detach", "--accel", "tcg", "--memory", "256M", "--cpus", "1", "--name", "k", base]
        // Whatever fails below, no QEMU outlives the test.
        defer { _ = try? box.wisp(["rm", "--force", "k"]) }
        try killWispAtFirstFsync(arguments, environment: box.environment)
        #expect(try box.states() == ["k": "incomplete"])
        #expect(!FileManager.default.fileExists(atPath: box.instancesDirectory + "/k/instance.json"))

        let again = try box.wisp(arguments)
        #expect(again.status == 0, "\(again.stderrText)")
        #expect(try box.states() == ["k": "running"])
        #expect(leftovers(box.instancesDirectory).isEmpty, "\(allEntries(box.instancesDirectory))")
        #expect(try sha256(base) == before)
        let removed = try box.wisp(["rm", "--force", "k"])
        #expect(removed.status == 0, "\(removed.stderrText)")
        #expect(try box.states().isEmpty)
    }

    /// Killed as the download is complete but not yet in the cache: the next run downloads
    /// again; the cache holds the image and its (empty, hidden) lock, nothing else.
    @Test func downloadKilledThenRepeated() throws {
        let box = try FaultBox("wisp-kill-download")
        let image = try box.blankDisk("served.qcow2")
        let body = [UInt8](try Data(contentsOf: URL(fileURLWithPath: image)))
        let server = try HTTPServer { request in
            request.path == "/disk.qcow2" ? HTTPResponse(status: 200, reason: "OK", contentType: "application/octet-stream", body: body) : .notFound()
        }
        defer { server.stop() }
        let arguments = ["run", "--boot", "uefi", "--detach", "--accel", "tcg", "--memory", "256M", "--cpus", "1", "--name", "dl",
                         "http://127.0.0.1:\(server.port)/disk.qcow2"]
        defer { _ = try? box.wisp(["rm", "--force", "dl"]) }
        try killWispAtFirstFsync(arguments, environment: box.environment)
        let images = box.cacheHome + "/wisp/images"
        #expect(leftovers(images).count == 1, "\(allEntries(images))")
        #expect(!allEntries(images).contains { $0.hasSuffix("-disk.qcow2") })

        let again = try box.wisp(arguments)
        #expect(again.status == 0, "\(again.stderrText)")
        #expect(try box.states() == ["dl": "running"])
        let entries = allEntries(images)
        #expect(entries.count == 2 && entries.contains { $0.hasPrefix(".") && $0.hasSuffix("-disk.qcow2.lock") }
                && entries.contains { !$0.hasPrefix(".") && $0.hasSuffix("-disk.qcow2") }, "\(entries)")
        #expect(leftovers(box.instancesDirectory).isEmpty)
    }

    /// Killed while the container image is unpacked (a blob is complete in its temporary):
    /// the next convert completes and the OCI cache holds no temporary.
    @Test func containerConvertKilledThenRepeated() throws {
        let box = try FaultBox("wisp-kill-oci")
        let archive = try ImageConvertContainerTests.makeImage(in: box.dir, kernel: true)
        try FileManager.default.createDirectory(atPath: box.dir.file("out"), withIntermediateDirectories: false)
        let output = box.dir.file("out/disk.qcow2")
        let arguments = ["image", "convert", "oci-archive:\(archive):v1", "-O", "qcow2", output]
        try killWispAtFirstFsync(arguments, environment: box.environment)
        #expect(leftovers(box.cacheHome).count == 1, "\(allEntries(box.cacheHome))")
        #expect(!FileManager.default.fileExists(atPath: output))

        let again = try box.wisp(arguments)
        #expect(again.status == 0, "\(again.stderrText)")
        #expect(leftovers(box.cacheHome).isEmpty, "\(allEntries(box.cacheHome))")
        #expect(allEntries(box.dir.file("out")) == ["disk.qcow2"])
        try ToolRunner.check("qemu-img", ["check", "-q", output])
    }
}
