import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import OCI

/// Layers are hostile: every one of these ends in a sentence, never a crash, a hang or an
/// unbounded allocation.
@Suite struct HostileLayerTests {
    /// A layer from a python tarfile program (`t` is the open archive, `add(name, ...)`
    /// as in the fixture), compressed with `compressor` (nil: none).
    static func layer(_ body: String, compressor: [String]? = ["gzip", "-n"], in work: TemporaryDirectory, name: String = "layer") throws -> OCILayer {
        let tar = work.file("\(name).tar")
        let statements = body.split(separator: "\n").map { $0.drop { $0 == " " } }.joined(separator: "\n")
        let program = """
        import io, sys, tarfile
        t = tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT)
        def add(name, kind=tarfile.REGTYPE, data=b'', mode=0o644, link=''):
            i = tarfile.TarInfo(name)
            i.type, i.mode, i.linkname = kind, mode, link
            i.size = len(data) if kind == tarfile.REGTYPE else 0
            t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        \(statements)
        t.close()
        """
        try ToolRunner.check("python3", ["-c", program, tar])
        let diffID = try OCIDigest("sha256:" + ImageHash.sha256(tar))
        var path = tar
        var compression = LayerCompression.uncompressed
        if let compressor {
            try ToolRunner.check(compressor[0], Array(compressor.dropFirst()) + ["-k", "-f", tar])
            path = tar + (compressor[0] == "gzip" ? ".gz" : ".zst")
            compression = compressor[0] == "gzip" ? .gzip : .zstd
        }
        return try layerFile(path, compression: compression, diffID: diffID)
    }

    static func layerFile(_ path: String, compression: LayerCompression, diffID: OCIDigest) throws -> OCILayer {
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
        let digest = try OCIDigest("sha256:" + ImageHash.sha256(path))
        return OCILayer(descriptor: OCIDescriptor(mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: digest, size: Int64(size)),
                        diffID: diffID, compression: compression, path: path)
    }

    static func build(_ layers: [OCILayer], limits: OCILayerLimits = OCILayerLimits()) throws -> [String: RootFSRecord] {
        let merged = try MergedRootFS.build(layers: layers, limits: limits)
        var sink = RecordingSink()
        try merged.emit(into: &sink)
        return sink.finished()
    }

    @Test func namesOutsideTheRootAreRefused() async throws {
        let work = try TemporaryDirectory("wisp-oci-escape")
        let cases: [(String, String)] = [
            ("add('../escape', data=b'x')", "has a .. component"),
            ("add('a/../../escape', data=b'x')", "has a .. component"),
            ("add('/etc/abs', data=b'x')", "absolute name"),
            ("add('link', tarfile.SYMTYPE, link='/etc')\n        add('link/passwd', data=b'x')", "through the symbolic link link"),
            ("add('up', tarfile.SYMTYPE, link='..')\n        add('up/x', tarfile.DIRTYPE)", "through the symbolic link up"),
            ("add('hard', tarfile.LNKTYPE, link='../../etc/shadow')", "has a .. component"),
            ("add('hard', tarfile.LNKTYPE, link='missing')", "does not exist"),
            ("add('d', tarfile.DIRTYPE)\n        add('hard', tarfile.LNKTYPE, link='d')", "is a directory"),
            ("add('file', data=b'x')\n        add('file/child', data=b'y')", "is not a directory"),
        ]
        for (index, (body, needle)) in cases.enumerated() {
            let layer = try Self.layer(body, in: work, name: "case\(index)")
            await expectError(.corrupt, [needle]) { _ = try Self.build([layer]) }
        }
        // A whiteout through a symlink planted by a lower layer is refused too.
        let lower = try Self.layer("add('lib', tarfile.SYMTYPE, link='/usr/lib')", in: work, name: "lower")
        let upper = try Self.layer("add('lib/.wh.libc.so', data=b'')", in: work, name: "upper")
        await expectError(.corrupt, ["through the symbolic link lib"]) { _ = try Self.build([lower, upper]) }
        // Symlinks themselves may point anywhere: the guest resolves them, not us.
        let fine = try Self.layer("add('abs', tarfile.SYMTYPE, link='/etc/passwd')\n        add('rel', tarfile.SYMTYPE, link='../../x')", in: work, name: "fine")
        let records = try Self.build([fine])
        #expect(records["abs"]?.kind == "symlink -> /etc/passwd" && records["rel"]?.kind == "symlink -> ../../x")
    }

    @Test func damagedStreamsFailWithASentence() async throws {
        let work = try TemporaryDirectory("wisp-oci-damaged")
        let payload = (0..<2000).map { "line \($0) of a file that compresses\n" }.joined()
        let good = try Self.layer("add('etc/data', data=b'''\(payload)''')", in: work, name: "good")
        #expect(try Self.build([good])["etc/data"]?.size == UInt64(payload.utf8.count))

        // The diff_id is checked before anything is used.
        var wrong = good
        wrong.diffID = try OCIDigest("sha256:" + String(repeating: "1", count: 64))
        await expectError(.digestMismatch, ["expected sha256:1111", "got \(good.diffID)"]) { _ = try Self.build([wrong]) }

        // A gzip stream cut short.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good.path))
        let cut = work.file("cut.tar.gz")
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut))
        await expectError(.corrupt, ["gzip stream"]) { _ = try Self.build([try Self.layerFile(cut, compression: .gzip, diffID: good.diffID)]) }
        // Garbage where gzip should be.
        let garbage = work.file("garbage")
        var generator = SplitMix64(seed: 7)
        try Data((0..<10000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }).write(to: URL(fileURLWithPath: garbage))
        await expectError(.corrupt, ["gzip stream"]) { _ = try Self.build([try Self.layerFile(garbage, compression: .gzip, diffID: good.diffID)]) }
        // Garbage as an uncompressed tar.
        await expectError(.corrupt, ["layer tar"]) {
            var layer = try Self.layerFile(garbage, compression: .uncompressed, diffID: good.diffID)
            layer.diffID = layer.descriptor.digest
            _ = try Self.build([layer])
        }
        // A tar cut inside a file's data (its own diff_id, so only the tar is at fault).
        let tar = try Data(contentsOf: URL(fileURLWithPath: work.file("good.tar")))
        let short = work.file("short.tar")
        try tar.prefix(2048).write(to: URL(fileURLWithPath: short))
        await expectError(.corrupt, ["layer tar entry"]) {
            _ = try Self.build([try Self.layerFile(short, compression: .uncompressed, diffID: try OCIDigest("sha256:" + ImageHash.sha256(short)))])
        }
    }

    /// Mutated copies of a valid layer: any outcome but a crash or a hang is fine, and an
    /// error is always a WispError.
    @Test func mutatedLayersNeverCrash() throws {
        let work = try TemporaryDirectory("wisp-oci-fuzz")
        let good = try Self.layer("""
        add('d', tarfile.DIRTYPE)
                add('d/f', data=b'hello' * 100)
                add('d/l', tarfile.SYMTYPE, link='f')
                add('d/h', tarfile.LNKTYPE, link='d/f')
                add('d/.wh.x')
        """, compressor: nil, in: work, name: "fuzz")
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: good.path)))
        var generator = SplitMix64(seed: 42)
        for round in 0..<200 {
            var bytes = original
            for _ in 0..<(1 + Int(generator.next() % 8)) {
                let at = Int(generator.next() % UInt64(bytes.count))
                bytes[at] = UInt8(truncatingIfNeeded: generator.next())
            }
            if round % 10 == 0 { bytes = Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count)))) }
            let path = work.file("m\(round).tar")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            var layer = try Self.layerFile(path, compression: .uncompressed, diffID: good.diffID)
            layer.diffID = layer.descriptor.digest
            do { _ = try Self.build([layer]) } catch is WispError {} catch {
                Issue.record("round \(round): \(error) is not a WispError")
            }
        }
    }

    /// GNU tar's own sparse format ('S' entries, which umoci cannot read): holes read as
    /// zeros, the data where it was.
    @Test func gnuSparseFilesKeepTheirData() throws {
        let work = try TemporaryDirectory("wisp-oci-sparse")
        try ToolRunner.check("bash", ["-c", """
        set -e
        mkdir -p \(work.path)/src
        truncate -s 16M \(work.path)/src/holes
        printf start | dd of=\(work.path)/src/holes conv=notrunc 2>/dev/null
        printf middle | dd of=\(work.path)/src/holes bs=1 seek=8388608 conv=notrunc 2>/dev/null
        tar --format=gnu --sparse -cf \(work.path)/sparse.tar -C \(work.path)/src holes
        """])
        let tar = work.file("sparse.tar")
        #expect(try FileManager.default.attributesOfItem(atPath: tar)[.size] as? Int ?? 0 < 1 << 20, "tar kept the file sparse")
        let layer = try Self.layerFile(tar, compression: .uncompressed, diffID: try OCIDigest("sha256:" + ImageHash.sha256(tar)))
        let records = try Self.build([layer])
        #expect(records["holes"]?.size == 16 << 20)
        #expect(records["holes"]?.sha256 == (try ImageHash.sha256(work.file("src/holes"))))
    }

    /// Bombs stop at the bound (ratio x compressed size, with a floor), not at memory's end.
    @Test func decompressionBombsAreCut() async throws {
        let work = try TemporaryDirectory("wisp-oci-bomb")
        let zeros = work.file("zeros.tar")
        // 256 MiB of zeros: a file in a tar, compressed ~1000:1.
        try ToolRunner.check("bash", ["-c", "python3 -c \"import tarfile,io,sys; t=tarfile.open(sys.argv[1],'w'); i=tarfile.TarInfo('big'); i.size=256<<20; t.addfile(i, open('/dev/zero','rb')); t.close()\" \(zeros) && gzip -1 -k \(zeros) && zstd -q -19 -k \(zeros)"])
        let diffID = try OCIDigest("sha256:" + ImageHash.sha256(zeros))
        let limits = OCILayerLimits(expansionRatio: 64, floorBytes: 16 << 20)
        for (path, compression) in [(zeros + ".gz", LayerCompression.gzip), (zeros + ".zst", .zstd)] {
            let layer = try Self.layerFile(path, compression: compression, diffID: diffID)
            await expectError(.corrupt, ["decompression bomb"]) { _ = try Self.build([layer], limits: limits) }
        }
        // Within a generous bound the same layer is fine.
        let layer = try Self.layerFile(zeros + ".zst", compression: .zstd, diffID: diffID)
        #expect(try Self.build([layer], limits: OCILayerLimits(expansionRatio: 64, floorBytes: 300 << 20))["big"]?.size == 256 << 20)
    }
}
