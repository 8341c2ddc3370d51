import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import OCI

/// The cache keeps only verified blobs: a pull that fails leaves nothing half-written.
@Suite struct BlobStoreTests {
    /// Every file in the store, temporaries included.
    static func storedFiles(_ store: OCIBlobStore) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: store.blobDirectory)) ?? []).sorted()
    }

    /// A copy of the fixture layout whose `base` manifest is rewritten by `edit`.
    static func editedLayout(_ work: TemporaryDirectory, _ edit: (inout [String: Any], (Any) throws -> (String, Int), String) throws -> Void) throws -> String {
        let fixture = try SharedFixture.get()
        let layout = work.file("layout")
        try ToolRunner.check("cp", ["-a", fixture.layout, layout])
        let indexURL = URL(fileURLWithPath: "\(layout)/index.json")
        var index = try JSONSerialization.jsonObject(with: Data(contentsOf: indexURL)) as? [String: Any] ?? [:]
        var entries = index["manifests"] as? [[String: Any]] ?? []
        let digest = entries.first?["digest"] as? String ?? ""
        let path = "\(layout)/blobs/sha256/\(digest.dropFirst(7))"
        var manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] ?? [:]
        func put(_ object: Any) throws -> (String, Int) {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            let digest = SHA256Digester.digest(Array(data)).description
            try data.write(to: URL(fileURLWithPath: "\(layout)/blobs/sha256/\(digest.dropFirst(7))"))
            return (digest, data.count)
        }
        try edit(&manifest, put, layout)
        let (newDigest, size) = try put(manifest)
        entries[0]["digest"] = newDigest
        entries[0]["size"] = size
        index["manifests"] = entries
        try JSONSerialization.data(withJSONObject: index).write(to: indexURL)
        return layout
    }

    @Test func aCorruptLayerIsNotCached() async throws {
        let work = try TemporaryDirectory("wisp-oci-corrupt")
        var layerDigest = ""
        let layout = try Self.editedLayout(work) { manifest, _, layout in
            let layers = manifest["layers"] as? [[String: Any]] ?? []
            layerDigest = layers.first?["digest"] as? String ?? ""
            // Flip one byte of the first layer in place: its descriptor no longer matches.
            let path = "\(layout)/blobs/sha256/\(layerDigest.dropFirst(7))"
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            bytes[bytes.count / 2] ^= 0xff
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }
        let store = OCIBlobStore(root: work.file("store"))
        await expectError(.digestMismatch, ["expected \(layerDigest)", "got sha256:", "nothing was cached"]) {
            _ = try await OCIPuller(store: store).pull(.layout(directory: layout, tag: OCIFixture.tag))
        }
        #expect(!store.contains(try OCIDigest(layerDigest)))
        #expect(Self.storedFiles(store).allSatisfy { !$0.hasPrefix(".") }, "temporaries left: \(Self.storedFiles(store))")
    }

    @Test func aWrongDiffIDIsNotCached() async throws {
        let work = try TemporaryDirectory("wisp-oci-diffid")
        var realDiffID = ""
        var layerDigest = ""
        let layout = try Self.editedLayout(work) { manifest, put, layout in
            layerDigest = (manifest["layers"] as? [[String: Any]])?.first?["digest"] as? String ?? ""
            let configDescriptor = manifest["config"] as? [String: Any] ?? [:]
            let path = "\(layout)/blobs/sha256/\((configDescriptor["digest"] as? String ?? "").dropFirst(7))"
            var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] ?? [:]
            var rootfs = config["rootfs"] as? [String: Any] ?? [:]
            var diffIDs = rootfs["diff_ids"] as? [String] ?? []
            realDiffID = diffIDs[0]
            diffIDs[0] = "sha256:" + String(repeating: "e", count: 64)
            rootfs["diff_ids"] = diffIDs
            config["rootfs"] = rootfs
            let (digest, size) = try put(config)
            manifest["config"] = ["mediaType": OCIMediaType.ociConfig, "digest": digest, "size": size]
        }
        let store = OCIBlobStore(root: work.file("store"))
        await expectError(.digestMismatch, ["expected sha256:eeee", "got \(realDiffID)", "nothing was cached"]) {
            _ = try await OCIPuller(store: store).pull(.layout(directory: layout, tag: OCIFixture.tag))
        }
        #expect(!store.contains(try OCIDigest(layerDigest)))
        #expect(Self.storedFiles(store).allSatisfy { !$0.hasPrefix(".") })
    }

    @Test func sizesAreChecked() async throws {
        let work = try TemporaryDirectory("wisp-oci-sizes")
        // A descriptor that says a layer is shorter than it is: cut off at the stated size.
        let layout = try Self.editedLayout(work) { manifest, _, _ in
            var layers = manifest["layers"] as? [[String: Any]] ?? []
            layers[0]["size"] = ((layers[0]["size"] as? Int) ?? 10) - 7
            manifest["layers"] = layers
        }
        let store = OCIBlobStore(root: work.file("store"))
        await expectError(.digestMismatch, ["longer than", "nothing was cached"]) {
            _ = try await OCIPuller(store: store).pull(.layout(directory: layout, tag: OCIFixture.tag))
        }
        // A manifest descriptor of absurd size is refused before anything is read.
        let big = try TemporaryDirectory("wisp-oci-big")
        let bigLayout = big.file("layout")
        try ToolRunner.check("cp", ["-a", try SharedFixture.get().layout, bigLayout])
        let indexPath = "\(bigLayout)/index.json"
        let text = try String(contentsOfFile: indexPath, encoding: .utf8)
        let replaced = text.replacingOccurrences(of: #""size":\d+"#, with: #""size":5000000000"#, options: .regularExpression)
        try replaced.write(toFile: indexPath, atomically: true, encoding: .utf8)
        await expectError(.corrupt, ["more than the 4194304-byte limit"]) {
            _ = try await OCIPuller(store: store).pull(.layout(directory: bigLayout, tag: OCIFixture.tag))
        }
        // So is an index.json of 5 MiB.
        try Data(repeating: 0x20, count: 5 << 20).write(to: URL(fileURLWithPath: indexPath))
        await expectError(.corrupt, ["index.json", "limit"]) {
            _ = try await OCIPuller(store: store).pull(.layout(directory: bigLayout, tag: OCIFixture.tag))
        }
        #expect(Self.storedFiles(store).allSatisfy { !$0.hasPrefix(".") })
    }

    @Test func sharedBlobsAreStoredOnce() async throws {
        let fixture = try SharedFixture.get()
        let work = try TemporaryDirectory("wisp-oci-shared")
        try fixture.copy(to: "oci-archive:\(work.file("a.tar")):v1")
        let store = OCIBlobStore(root: work.file("store"))
        let first = try await OCIPuller(store: store).pull(.layout(directory: fixture.layout, tag: OCIFixture.tag))
        let count = Self.storedFiles(store).count
        let second = try await OCIPuller(store: store).pull(.layoutArchive(file: work.file("a.tar"), tag: "v1"))
        #expect(first.layers.map(\.descriptor.digest) == second.layers.map(\.descriptor.digest))
        #expect(Self.storedFiles(store).count == count, "the second pull stored nothing new")
        #expect(count == first.layers.count + 2, "layers, config and manifest: \(Self.storedFiles(store))")
        // Stored blobs are read-only and named by their digest.
        for layer in first.layers {
            #expect(try ImageHash.sha256(layer.path) == layer.descriptor.digest.hex)
            #expect(layer.path == "\(work.file("store"))/blobs/sha256/\(layer.descriptor.digest.hex)")
        }
    }
}
