import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import OCI

@Suite struct LayerApplyTests {
    /// Our merged tree, path by path, against umoci's unpack of the same image.
    @Test func mergedTreeMatchesUmociUnpack() async throws {
        let fixture = try SharedFixture.get()
        let work = try TemporaryDirectory("wisp-oci-apply")
        let (image, merged, ours) = try await pullAndRecord("oci:\(fixture.layout):\(OCIFixture.tag)",
                                                            store: OCIBlobStore(root: work.file("store")))
        #expect(image.layers.count == 6)
        #expect(image.platform == OCIPlatform(os: "linux", architecture: "amd64") || image.platform.architecture == OCIPlatform.host.architecture)
        // umoci refuses to set security.selinux ("forbidden xattr"); we keep it for the guest.
        #expect(ours["pax/xattrs"]?.xattrs["security.selinux"] == Array("system_u:object_r:bin_t:s0".utf8))
        var comparable = ours
        comparable["pax/xattrs"]?.xattrs["security.selinux"] = nil
        // The root's metadata is the bundle directory's, not the image's.
        comparable[""] = nil
        var judge = fixture.judgeRecords
        judge[""] = nil
        #expect(judge.count > 40, "umoci unpacked \(judge.count) paths")
        let diff = differences(comparable, judge)
        #expect(diff.isEmpty, "\(diff.count) paths differ from umoci:\n\(diff.prefix(20).joined(separator: "\n"))")

        // The rules, spelled out (the comparison above already covers them).
        #expect(ours["old/a"] == nil && ours["old/b"] != nil, "whiteout")
        #expect(ours["opq/lower1"] == nil && ours["opq/upper"] != nil, "opaque directory")
        #expect(ours["opq2/lower2"] == nil && ours["opq2/fresh"] != nil, "opaque marker after the layer's own entry")
        #expect(ours["replace-file"]?.kind == "dir" && ours["replace-file/inside"] != nil)
        #expect(ours["replace-dir"]?.kind == "file" && ours["replace-dir/sub/x"] == nil)
        #expect(ours["hl/passwd-link"]?.links == ["etc/passwd", "hl/passwd-link"], "hard link to a lower layer's file")
        #expect(ours["shared/two"]?.links == ["shared/one", "shared/two"])
        #expect(ours["etc/hostname-link"] == nil)
        #expect(ours["bin/tool"]?.permissions == 0o4755 && ours["bin/tool"]?.xattrs["security.capability"] != nil)
        #expect(ours["tmp"]?.permissions == 0o1777 && ours["setgid-dir"]?.permissions == 0o2775)
        #expect(ours["owned"]?.uid == 100000 && ours["owned"]?.gid == 200000)
        #expect(ours["pax/owner"]?.uid == 3000000 && ours["pax/owner"]?.mtime == RootFSTimestamp(seconds: 1650000000, nanoseconds: 987654321))
        #expect(ours["dev/null"]?.kind == "char 1,3" && ours["dev/loop0"]?.kind == "block 7,0" && ours["dev/fifo"]?.kind == "fifo")
        #expect(ours["sparse/file"]?.size == 8 << 20)
        #expect(ours.keys.contains { $0.hasPrefix("gnu/ggg") && $0.count > 150 })

        // Totals from pass 1 agree with what pass 2 emitted.
        let files = Set(ours.filter { $0.value.kind == "file" }.map { $0.value.links.first ?? $0.key })
        #expect(merged.summary.regularFiles == files.count)
        #expect(merged.summary.entryCount == ours.count)
        #expect(merged.summary.directories == ours.values.filter { $0.kind == "dir" }.count)
    }

    /// oci-archive, docker-archive (legacy from skopeo, and a Docker 25+ archive that is
    /// also an OCI layout), zstd layers: each yields exactly the tree the layout does.
    @Test func everyTransportYieldsTheSameTree() async throws {
        let fixture = try SharedFixture.get()
        let work = try TemporaryDirectory("wisp-oci-transports")
        let (_, _, reference) = try await pullAndRecord("oci:\(fixture.layout):\(OCIFixture.tag)", store: OCIBlobStore(root: work.file("ref-store")))

        try fixture.copy(to: "oci-archive:\(work.file("image.tar")):v1")
        try fixture.copy(to: "docker-archive:\(work.file("docker.tar")):wisp/fixture:v1")
        try ToolRunner.check("skopeo", ["copy", "--quiet", "--dest-compress", "--dest-compress-format", "zstd",
                                        "oci:\(fixture.layout):\(OCIFixture.tag)", "oci:\(work.file("zstd")):z"])
        let docker25 = try makeDocker25Archive(from: work.file("docker.tar"), in: work)
        let store = OCIBlobStore(root: work.file("store"))
        for reference in ["oci-archive:\(work.file("image.tar")):v1",
                          "oci-archive:\(work.file("image.tar"))",
                          "docker-archive:\(work.file("docker.tar"))",
                          "docker-archive:\(work.file("docker.tar")):wisp/fixture:v1",
                          "docker-archive:\(work.file("docker.tar")):docker.io/wisp/fixture:v1",
                          "oci:\(work.file("zstd")):z",
                          "docker-archive:\(docker25):wisp/fixture:v1"] as [String] {
            let (image, _, records) = try await pullAndRecord(reference, store: store)
            let diff = differences(records, referenceRecords(reference))
            #expect(diff.isEmpty, "\(reference): \(diff.count) paths differ:\n\(diff.prefix(10).joined(separator: "\n"))")
            if reference.contains("zstd") {
                #expect(image.layers.allSatisfy { $0.compression == .zstd })
            }
        }
        func referenceRecords(_ name: String) -> [String: RootFSRecord] { reference }
    }

    /// A Docker 25+ `docker save`: manifest.json naming blobs/sha256/<hex> of an OCI layout
    /// with uncompressed layers (made from skopeo's legacy archive, whose layers are).
    func makeDocker25Archive(from legacy: String, in work: TemporaryDirectory) throws -> String {
        let root = work.file("docker25")
        try ToolRunner.check("bash", ["-c", #"""
        set -euo pipefail
        mkdir -p "$2/x" "$2/tree/blobs/sha256"
        tar -xf "$1" -C "$2/x"
        cd "$2/x"
        python3 - "$2" <<'PY'
        import hashlib, json, os, shutil, sys
        out = sys.argv[1] + '/tree'
        entry = json.load(open('manifest.json'))[0]
        def put(path):
            data = open(path, 'rb').read()
            digest = hashlib.sha256(data).hexdigest()
            open(f'{out}/blobs/sha256/{digest}', 'wb').write(data)
            return digest, len(data)
        config, csize = put(entry['Config'])
        layers = [put(os.path.realpath(p)) for p in entry['Layers']]
        manifest = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
            'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': 'sha256:' + config, 'size': csize},
            'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar', 'digest': 'sha256:' + d, 'size': s} for d, s in layers]}).encode()
        mdigest = hashlib.sha256(manifest).hexdigest()
        open(f'{out}/blobs/sha256/{mdigest}', 'wb').write(manifest)
        json.dump({'schemaVersion': 2, 'manifests': [{'mediaType': 'application/vnd.oci.image.manifest.v1+json',
            'digest': 'sha256:' + mdigest, 'size': len(manifest),
            'annotations': {'io.containerd.image.name': 'docker.io/wisp/fixture:v1', 'org.opencontainers.image.ref.name': 'v1'}}]},
            open(f'{out}/index.json', 'w'))
        open(f'{out}/oci-layout', 'w').write('{"imageLayoutVersion": "1.0.0"}')
        json.dump([{'Config': 'blobs/sha256/' + config, 'RepoTags': ['wisp/fixture:v1'],
                    'Layers': ['blobs/sha256/' + d for d, _ in layers]}], open(f'{out}/manifest.json', 'w'))
        PY
        tar -cf "$2/docker25.tar" -C "$2/tree" .
        """#, "docker25", legacy, root])
        return "\(root)/docker25.tar"
    }
}
