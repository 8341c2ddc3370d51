import Foundation
import MetadataService
import Testing
import WispCore
import WispTestSupport

/// A full disk under every command that writes: the real binary writes onto a small tmpfs.
/// Each case checks the sentence (the path and the space needed), that no partial output
/// or temporary is left, and that the input is untouched. Where the size is known up
/// front (a convert's data, a download's Content-Length, a firmware copy) the check comes
/// before any work; elsewhere the write that hits ENOSPC says it.
@Suite(.serialized) struct FullDiskTests {
    /// 2 MiB of random data in an 8 MiB raw disk: incompressible, so the output needs it all.
    static func randomRawImage(_ box: FaultBox) throws -> String {
        let input = box.dir.file("input.raw")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "raw", input, "8M"])
        var generator = SplitMix64(seed: 16)
        let bytes = generator.bytes(2 << 20)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: input))
        try handle.seek(toOffset: 1 << 20)
        handle.write(Data(bytes))
        try handle.close()
        return input
    }

    @Test func convertOntoAFullDiskSaysSoBeforeWriting() throws {
        let box = try FaultBox("wisp-full-convert")
        let input = try Self.randomRawImage(box)
        let before = try sha256(input)
        let small = try SmallFilesystem(at: box.dir.file("small"), bytes: 1 << 20)
        defer { small.unmount() }
        let output = small.path + "/out.qcow2"

        let result = try box.wisp(["image", "convert", "-O", "qcow2", input, output])
        #expect(result.status == 1)
        #expect(result.stderrText.hasPrefix("wisp: \(output): writing it needs about 2"), "\(result.stderrText)")
        #expect(result.stderrText.contains("free; nothing was written"), "\(result.stderrText)")
        #expect(allEntries(small.path).isEmpty, "\(allEntries(small.path))")
        #expect(try sha256(input) == before)

        // Compressed, the size cannot be known ahead: the write that fills the disk says it.
        let compressed = try box.wisp(["image", "convert", "-O", "qcow2", "-c", input, output])
        #expect(compressed.status == 1)
        #expect(compressed.stderrText.hasPrefix("wisp: \(output): the filesystem holding it is full (needs at least "), "\(compressed.stderrText)")
        #expect(compressed.stderrText.contains("nothing was kept"))
        #expect(!compressed.stderrText.contains(".tmp-"), "the temporary's name is not the user's business")
        #expect(allEntries(small.path).isEmpty, "\(allEntries(small.path))")
        #expect(try sha256(input) == before)
    }

    @Test func seedOntoAFullDisk() throws {
        let box = try FaultBox("wisp-full-seed")
        let small = try SmallFilesystem(at: box.dir.file("small"), bytes: 256 << 10)
        defer { small.unmount() }
        try small.fill(leaving: 16 << 10)
        let output = small.path + "/seed.iso"
        let result = try box.wisp(["seed", output, "--user", "me", "--hostname", "full", "--allow-no-login"])
        #expect(result.status == 1)
        #expect(result.stderrText.contains("wisp: \(output): the filesystem holding it is full (needs at least "), "\(result.stderrText)")
        #expect(allEntries(small.path) == ["filler"], "\(allEntries(small.path))")
    }

    /// The instance directory's filesystem fills while `wisp run` makes the overlay (a
    /// 128 KiB tmpfs) or copies the firmware variables (400 KiB): one sentence, no instance.
    @Test(arguments: [128 << 10, 400 << 10])
    func runWithAFullDataDirectory(bytes: Int) throws {
        var box = try FaultBox("wisp-full-run")
        let base = try box.blankDisk()
        let before = try sha256(base)
        let small = try SmallFilesystem(at: box.dir.file("small"), bytes: bytes)
        defer { small.unmount() }
        box.dataHome = small.path
        let result = try box.runDetached(base, name: "full")
        #expect(result.status == 1)
        let instance = small.path + "/wisp/instances/full/"
        #expect(result.stderrText.contains("wisp: \(instance)"), "\(result.stderrText)")
        #expect(result.stderrText.contains("needs"), "\(result.stderrText)")
        #expect(try box.states().isEmpty)
        // The claim lock stays (empty, hidden); nothing of the instance does.
        #expect(allEntries(box.instancesDirectory) == [".claim.lock"], "\(allEntries(box.instancesDirectory))")
        #expect(try sha256(base) == before)
    }

    /// The server says the image is 2 MiB; the cache has 1 MiB: refused before the transfer.
    @Test func downloadIntoAFullCache() throws {
        var box = try FaultBox("wisp-full-download")
        let image = try Self.randomRawImage(box)
        let body = [UInt8](try Data(contentsOf: URL(fileURLWithPath: image)).prefix(3 << 20))
        let server = try HTTPServer { request in
            request.path == "/disk.raw" ? HTTPResponse(status: 200, reason: "OK", contentType: "application/octet-stream", body: body) : .notFound()
        }
        defer { server.stop() }
        let small = try SmallFilesystem(at: box.dir.file("small"), bytes: 1 << 20)
        defer { small.unmount() }
        box.cacheHome = small.path
        let result = try box.runDetached("http://127.0.0.1:\(server.port)/disk.raw", name: "dl")
        #expect(result.status == 1)
        #expect(result.stderrText.contains("wisp: \(small.path)/wisp/images/"), "\(result.stderrText)")
        #expect(result.stderrText.contains("the download (3 MiB) needs about 3 MiB"), "\(result.stderrText)")
        #expect(leftovers(small.path).isEmpty, "\(allEntries(small.path))")
        #expect(!allEntries(small.path).contains { $0.hasSuffix("disk.raw") }, "\(allEntries(small.path))")
        #expect(try box.states().isEmpty)
    }

    /// A container image unpacked into a cache with no room: the blobs or the disk built
    /// from them stop with a sentence; no disk entry and no temporary remain.
    @Test func containerImageIntoAFullCache() throws {
        var box = try FaultBox("wisp-full-oci")
        let archive = try ImageConvertContainerTests.makeImage(in: box.dir, kernel: true)
        let small = try SmallFilesystem(at: box.dir.file("small"), bytes: 96 << 10)
        defer { small.unmount() }
        box.cacheHome = small.path
        let output = box.dir.file("disk.qcow2")
        let result = try box.wisp(["image", "convert", "oci-archive:\(archive):v1", "-O", "qcow2", output])
        #expect(result.status == 1)
        #expect(result.stderrText.contains("wisp: \(small.path)/wisp/"), "\(result.stderrText)")
        #expect(result.stderrText.contains("needs"), "\(result.stderrText)")
        #expect(leftovers(small.path).isEmpty, "\(allEntries(small.path))")
        #expect(!allEntries(small.path).contains { $0.hasSuffix(".raw") }, "\(allEntries(small.path))")
        #expect(!FileManager.default.fileExists(atPath: output))
    }
}
