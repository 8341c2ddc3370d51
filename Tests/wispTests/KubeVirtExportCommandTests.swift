import Foundation
import Machine
import Testing
import WispCore
import WispKit
import WispTestSupport
import Yams

/// `wisp export kubevirt` against Debian's docker-registry (token auth, as TestRegistry
/// runs it): the containerDisk is pulled back with skopeo and its layer read with tar and
/// qemu-img; the VirtualMachine manifest is parsed back with Yams.
@Suite struct KubeVirtExportCommandTests {
    @Test func instanceAndImageExportPushAndReadBack() throws {
        let registry = try TestRegistry()
        let dir = try TemporaryDirectory("wisp-kubevirt")
        let environment = ["HOME": dir.path, "XDG_DATA_HOME": dir.file("data"), "XDG_CACHE_HOME": dir.file("cache"),
                           "XDG_CONFIG_HOME": dir.file("config")]
        let store = InstanceStore(paths: WispPaths(environment: environment))
        let authFile = dir.file("auth.json")
        let auth = Data("\(TestRegistry.user):\(TestRegistry.password)".utf8).base64EncodedString()
        try #"{"auths": {"\#(registry.host)": {"auth": "\#(auth)"}}}"#.write(toFile: authFile, atomically: true, encoding: .utf8)

        // A stopped instance "web": a qcow2 overlay on a qcow2 base, data in both layers.
        let base = dir.file("base.qcow2")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", base, "64M"])
        try ToolRunner.check("qemu-io", ["-c", "write -P 0x11 0 4M", "-c", "write -P 0x22 16M 1M", base])
        _ = try store.claim(requested: "web", base: "web")
        let files = store.files("web")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", files.overlay])
        try ToolRunner.check("qemu-io", ["-c", "write -P 0x33 1M 1M", files.overlay])
        try ToolRunner.check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "wisp-web", "-f", files.privateKey])
        let spec = MachineSpec(cpus: 3, memoryBytes: 1536 << 20, disks: [DiskAttachment(path: files.overlay, format: .qcow2)],
                               forwards: [PortForward(hostPort: 2222, guestPort: 22)])
        try store.save(InstanceRecord(name: "web", image: base, baseImagePath: base, spec: spec, bootMode: .uefi, user: "me",
                                      hostname: "web", sshPort: 2222, cloudInit: .disk, osName: nil))

        let target = "\(registry.host)/wisp/web:v1"
        let first = try WispBinary.run(["export", "kubevirt", "web", "--push", target, "--authfile", authFile, "-o", dir.file("web.yaml")],
                                       environment: environment)
        #expect(first.status == 0, "\(first.stderrText)")
        #expect(first.stderrText.contains("2 blob(s) uploaded, 0 already there"), "\(first.stderrText)")
        // The same disk again: same layer and config digests, nothing uploaded.
        let second = try WispBinary.run(["export", "kubevirt", "web", "--push", target, "--authfile", authFile],
                                        environment: environment)
        #expect(second.status == 0, "\(second.stderrText)")
        #expect(second.stderrText.contains("0 blob(s) uploaded, 2 already there"), "\(second.stderrText)")
        #expect(try String(contentsOfFile: dir.file("web.yaml"), encoding: .utf8) == second.stdoutText)
        // The work files (whole-disk copies) were in an owner-only staging directory, now gone.
        let staging = dir.file("cache") + "/wisp/kubevirt-export"
        #expect((try FileManager.default.contentsOfDirectory(atPath: staging)).isEmpty)
        #expect(((try FileManager.default.attributesOfItem(atPath: staging))[.posixPermissions] as? Int) == 0o700)

        // Pulled back as it is in the registry (digests preserved, layer not recompressed).
        let layout = dir.file("pulled")
        try ToolRunner.check("skopeo", ["copy", "--preserve-digests", "--src-tls-verify=false", "--src-creds",
                                        "\(TestRegistry.user):\(TestRegistry.password)", "docker://\(target)", "oci:\(layout):web"])
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json"))) as? [String: Any]
        let manifestDigest = try #require(((index?["manifests"] as? [[String: Any]])?.first?["digest"] as? String))
        #expect(second.stderrText.contains("@\(manifestDigest):"))
        func blob(_ digest: String) -> String { layout + "/blobs/sha256/" + digest.dropFirst("sha256:".count) }
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: blob(manifestDigest)))) as? [String: Any]
        #expect(manifest?["mediaType"] as? String == "application/vnd.oci.image.manifest.v1+json")
        let layers = try #require(manifest?["layers"] as? [[String: Any]])
        #expect(layers.count == 1)
        #expect(layers.first?["mediaType"] as? String == "application/vnd.oci.image.layer.v1.tar")
        let layer = blob(try #require(layers.first?["digest"] as? String))

        let listing = try ToolRunner.check("tar", ["--numeric-owner", "-tvf", layer]).stdoutText
        let entries = listing.split(separator: "\n").map { $0.split(separator: " ") }
        #expect(entries.map { String($0.last ?? "") } == ["disk/", "disk/web.qcow2"], "\(listing)")
        #expect(entries.allSatisfy { $0.count > 1 && $0[1] == "107/107" }, "\(listing)")
        let configDigest = try #require((manifest?["config"] as? [String: Any])?["digest"] as? String)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: blob(configDigest)))) as? [String: Any]
        #expect(config?["os"] as? String == "linux")
        let layerDigest = try #require(layers.first?["digest"] as? String)
        #expect(((config?["rootfs"] as? [String: Any])?["diff_ids"] as? [String]) == [layerDigest])
        // The disk inside: one standalone qcow2 with the guest's view of overlay + base.
        try FileManager.default.createDirectory(atPath: dir.file("layer"), withIntermediateDirectories: true)
        try ToolRunner.check("tar", ["-xf", layer, "-C", dir.file("layer")])
        let disk = dir.file("layer/disk/web.qcow2")
        let info = try JSONSerialization.jsonObject(with: ToolRunner.check("qemu-img", ["info", "--output=json", disk]).stdout) as? [String: Any]
        #expect(info?["format"] as? String == "qcow2")
        #expect(info?["backing-filename"] == nil)
        #expect(info?["virtual-size"] as? Int == 64 << 20)
        try ToolRunner.check("qemu-img", ["compare", "-f", "qcow2", "-F", "qcow2", files.overlay, disk])
        try ToolRunner.check("qemu-io", ["-c", "read -P 0x33 1M 1M", "-c", "read -P 0x11 2M 2M", "-c", "read -P 0x22 16M 1M", "-r", disk])

        // The manifest, field by field as KubeVirt reads them.
        let vm = try #require(try Yams.load(yaml: second.stdoutText) as? [String: Any])
        #expect(vm["apiVersion"] as? String == "kubevirt.io/v1")
        #expect(vm["kind"] as? String == "VirtualMachine")
        #expect((vm["metadata"] as? [String: Any])?["name"] as? String == "web")
        let spec2 = try #require(vm["spec"] as? [String: Any])
        #expect(spec2["runStrategy"] as? String == "Always")
        let template = try #require((spec2["template"] as? [String: Any])?["spec"] as? [String: Any])
        let domain = try #require(template["domain"] as? [String: Any])
        #expect((domain["cpu"] as? [String: Any])?["cores"] as? Int == 3)
        #expect(((domain["resources"] as? [String: Any])?["requests"] as? [String: Any])?["memory"] as? String == "1536Mi")
        let disks = try #require((domain["devices"] as? [String: Any])?["disks"] as? [[String: Any]])
        let volumes = try #require(template["volumes"] as? [[String: Any]])
        #expect(Set(disks.compactMap { $0["name"] as? String }) == Set(volumes.compactMap { $0["name"] as? String }))
        let containerDisk = volumes.compactMap { $0["containerDisk"] as? [String: Any] }
        #expect(containerDisk.count == 1 && containerDisk.first?["image"] as? String == target)
        let noCloud = try #require(volumes.compactMap { $0["cloudInitNoCloud"] as? [String: Any] }.first)
        let userData = try #require(noCloud["userData"] as? String)
        #expect(userData.hasPrefix("#cloud-config\n"))
        let cloudConfig = try #require(try Yams.load(yaml: userData) as? [String: Any])
        let users = try #require(cloudConfig["users"] as? [[String: Any]])
        let publicKey = try String(contentsOfFile: files.publicKey, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(users.first?["name"] as? String == "me")
        #expect(users.first?["ssh_authorized_keys"] as? [String] == [publicKey])
        #expect(!second.stdoutText.contains("PRIVATE KEY") && cloudConfig["ssh_keys"] == nil, "no private key in the manifest")
        let networkData = try #require(noCloud["networkData"] as? String)
        let network = try #require(try Yams.load(yaml: networkData) as? [String: Any])
        #expect(network["version"] as? Int == 2)
        // cloud-init's own schema check of the user-data, as the guest would read it.
        try userData.write(toFile: dir.file("user-data"), atomically: true, encoding: .utf8)
        try ToolRunner.check("cloud-init", ["schema", "--config-file", dir.file("user-data")])

        // An image file instead of an instance: the key given, the name from --vm-name.
        try ToolRunner.check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "other", "-f", dir.file("other")])
        let fromImage = try WispBinary.run(["export", "kubevirt", base, "--vm-name", "plain", "--ssh-key", dir.file("other.pub"),
                                            "--push", "\(registry.host)/wisp/plain:v1", "--authfile", authFile], environment: environment)
        #expect(fromImage.status == 0, "\(fromImage.stderrText)")
        #expect(fromImage.stdoutText.contains("image: \(registry.host)/wisp/plain:v1"))
        let bad = try WispBinary.run(["export", "kubevirt", base, "--vm-name", "Not_Valid", "--ssh-key", dir.file("other.pub"),
                                      "--push", "\(registry.host)/wisp/plain:v1"], environment: environment)
        #expect(bad.status != 0 && bad.stderrText.contains("lowercase letters, digits and '-'"), "\(bad.stderrText)")
        // Pushing without credentials is refused by the registry, with the hint.
        let denied = try WispBinary.run(["export", "kubevirt", "web", "--push", "\(registry.host)/wisp/denied:v1",
                                         "--authfile", dir.file("none.json")], environment: environment)
        #expect(denied.status != 0 && denied.stderrText.contains("access denied"), "\(denied.stderrText)")
    }

    /// A container reference as IMAGE: the disk `wisp run` would build from it (the one
    /// `wisp image convert` writes), pushed to a registry without auth.
    @Test func containerReferenceExportMatchesImageConvert() throws {
        let registry = try TestRegistry(auth: false)
        let dir = try TemporaryDirectory("wisp-kubevirt-oci")
        let archive = try ImageConvertContainerTests.makeImage(in: dir, kernel: true)
        let environment = ["XDG_CACHE_HOME": dir.file("cache"), "XDG_DATA_HOME": dir.file("data"), "HOME": dir.path]
        try ToolRunner.check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", dir.file("key")])
        let target = "\(registry.host)/wisp/bootc:v1"
        let exported = try WispBinary.run(["export", "kubevirt", "oci-archive:\(archive):v1", "--ssh-key", dir.file("key.pub"),
                                           "--push", target], environment: environment)
        #expect(exported.status == 0, "\(exported.stderrText)")
        let vm = try #require(try Yams.load(yaml: exported.stdoutText) as? [String: Any])
        // The name comes from the archive's file name.
        #expect((vm["metadata"] as? [String: Any])?["name"] as? String == "image")
        try WispBinary.check(["image", "convert", "oci-archive:\(archive):v1", "-O", "qcow2", dir.file("converted.qcow2")], environment: environment)
        let layout = dir.file("pulled")
        try ToolRunner.check("skopeo", ["copy", "--preserve-digests", "--src-tls-verify=false", "docker://\(target)", "oci:\(layout):x"])
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json"))) as? [String: Any]
        let manifestDigest = try #require((index?["manifests"] as? [[String: Any]])?.first?["digest"] as? String)
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout + "/blobs/sha256/" + manifestDigest.dropFirst(7)))) as? [String: Any]
        let layerDigest = try #require((manifest?["layers"] as? [[String: Any]])?.first?["digest"] as? String)
        try FileManager.default.createDirectory(atPath: dir.file("layer"), withIntermediateDirectories: true)
        try ToolRunner.check("tar", ["-xf", layout + "/blobs/sha256/" + layerDigest.dropFirst(7), "-C", dir.file("layer")])
        try ToolRunner.check("qemu-img", ["compare", "-f", "qcow2", "-F", "qcow2", dir.file("converted.qcow2"), dir.file("layer/disk/image.qcow2")])
    }
}
