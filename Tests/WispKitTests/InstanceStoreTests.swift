import Foundation
import Testing
import Machine
import WispCore
import WispTestSupport
@testable import WispKit

@Suite struct InstanceStoreTests {
    @Test func claimsNamesAtomicallyAndInSequence() throws {
        let dir = try TemporaryDirectory("wisp-store")
        let store = InstanceStore(paths: WispPaths(environment: ["HOME": dir.path, "XDG_DATA_HOME": dir.file("data")]))
        #expect(store.root == dir.file("data") + "/wisp/instances")
        #expect(try store.claim(requested: nil, base: "debian-12") == "debian-12")
        #expect(try store.claim(requested: nil, base: "debian-12") == "debian-12-2")
        #expect(try store.claim(requested: nil, base: "Debian 12!") == "debian-12-3")
        #expect(throws: WispError.self) { try store.claim(requested: "debian-12", base: "x") }
        #expect(throws: WispError.self) { try store.claim(requested: "../evil", base: "x") }
        #expect(throws: WispError.self) { try store.claim(requested: "-x", base: "x") }
        let attributes = try FileManager.default.attributesOfItem(atPath: store.files("debian-12").directory)
        #expect((attributes[.posixPermissions] as? Int) == 0o700)
        // A claimed directory without instance.json is an interrupted run: listed as such.
        #expect(InstanceController(store: store).list().map(\.state) == [.incomplete, .incomplete, .incomplete])
        #expect(throws: WispError.self) { try store.load("debian-12") }
        try InstanceController(store: store).remove("debian-12", force: false)
        #expect(store.names() == ["debian-12-2", "debian-12-3"])
    }

    @Test func recordRoundTrips() throws {
        let dir = try TemporaryDirectory("wisp-record")
        let store = InstanceStore(paths: WispPaths(environment: ["HOME": dir.path, "XDG_DATA_HOME": dir.file("data")]))
        let name = try store.claim(requested: "r", base: "x")
        let spec = MachineSpec(cpus: 2, memoryBytes: 1 << 30, disks: [DiskAttachment(path: "/o.qcow2", format: .qcow2)],
                               forwards: [PortForward(hostPort: 2222, guestPort: 22)],
                               boot: .direct(DirectBoot(kernel: "/k", initrd: "/i", commandLine: "ro")), accelerator: .tcg)
        let record = InstanceRecord(name: name, image: "img.qcow2", baseImagePath: "/img.qcow2", createdAt: Date(timeIntervalSince1970: 1_700_000_000),
                                    spec: spec, bootMode: .direct, user: "me", hostname: name, sshPort: 2222, cloudInit: .disk, osName: "debian 12")
        try store.save(record)
        #expect(try store.load(name) == record)
        let attributes = try FileManager.default.attributesOfItem(atPath: store.files(name).record)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    /// instance.json as the first release wrote it (no version, modes as strings, the
    /// NoCloud-net port only inside the kernel command line) still loads, and is saved back
    /// in the current format.
    @Test func loadsVersionOneRecords() throws {
        let dir = try TemporaryDirectory("wisp-record-v1")
        let store = InstanceStore(paths: WispPaths(environment: ["HOME": dir.path, "XDG_DATA_HOME": dir.file("data")]))
        let name = try store.claim(requested: "old", base: "x")
        let v1 = """
            {
              "baseImagePath" : "/images/debian-12.qcow2",
              "bootMode" : "direct",
              "cloudInit" : "http",
              "createdAt" : "2026-11-01T10:00:00Z",
              "hostname" : "old",
              "image" : "debian-12.qcow2",
              "name" : "old",
              "osName" : "debian 12",
              "spec" : {
                "accelerator" : "tcg",
                "boot" : {
                  "direct" : {
                    "_0" : {
                      "commandLine" : "root=UUID=x ro console=ttyS0,115200 ds=nocloud;dsmode=net;s=http://10.0.2.2:41234/",
                      "initrd" : "/inst/initrd.img",
                      "kernel" : "/inst/vmlinuz"
                    }
                  }
                },
                "cpus" : 2,
                "disks" : [
                  { "format" : "qcow2", "path" : "/inst/overlay.qcow2", "readOnly" : false }
                ],
                "forwards" : [
                  { "guestPort" : 22, "hostAddress" : "127.0.0.1", "hostPort" : 2222 }
                ],
                "macAddress" : "52:54:00:12:34:56",
                "memoryBytes" : 2147483648
              },
              "sshPort" : 2222,
              "user" : "me"
            }
            """
        try Data(v1.utf8).write(to: URL(fileURLWithPath: store.files(name).record))
        let record = try store.load(name)
        #expect(record.formatVersion == 1)
        #expect(record.bootMode == .direct && record.cloudInit == .http)
        #expect(record.metadataPort == 41234)
        #expect(record.metadataToken == "", "a version-1 guest reads its seed at the listener's root")
        #expect(record.baseImage == nil)
        #expect(record.spec.disks.first?.path == "/inst/overlay.qcow2")
        #expect(record.spec.forwards.first?.hostPort == 2222)
        // A record from a newer wisp is refused with a sentence, not misread.
        let future = v1.replacingOccurrences(of: "\"name\" : \"old\",", with: "\"name\" : \"old\", \"formatVersion\" : 99,")
        try Data(future.utf8).write(to: URL(fileURLWithPath: store.files(name).record))
        do {
            _ = try store.load(name)
            Issue.record("a version-99 record loaded")
        } catch let error as WispError {
            #expect(error.kind == .unsupported, "\(error)")
        }
    }

    @Test func guestCommandLineNamesTheDatasource() {
        let debian = "BOOT_IMAGE=/boot/vmlinuz root=PARTUUID=x ro console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200"
        #expect(InstanceCreator.guestCommandLine(debian, board: X86_64Board(), cloudInit: .disk, seedURL: nil) == debian + " ds=nocloud")
        #expect(InstanceCreator.guestCommandLine("root=/dev/vda1 ro ds=ec2", board: X86_64Board(), cloudInit: .http, seedURL: "http://10.0.2.2:8000/")
                == "root=/dev/vda1 ro console=ttyS0,115200 ds=nocloud;s=http://10.0.2.2:8000/")
        #expect(InstanceCreator.guestCommandLine(debian, board: X86_64Board(), cloudInit: .disk, seedURL: nil, networkStage: true) == debian + " ds=nocloud;dsmode=net")
    }

    /// Judge: cloud-init's own NoCloud command-line parser reads the datasource mode and seed
    /// URL Wisp means (dsmode "net" is what an init-stage phone_home and a NoCloud-net seed need).
    @Test func cloudInitReadsTheDatasourceModeFromOurCommandLine() throws {
        let script = """
            import json, sys
            from cloudinit.sources.DataSourceNoCloud import load_cmdline_data
            fill = {}
            found = load_cmdline_data(fill, sys.argv[1])
            print(json.dumps({"found": found, "fill": fill}))
            """
        let cases: [(line: String, dsmode: String, seed: String?)] = [
            (InstanceCreator.guestCommandLine("root=/dev/vda1 ro", board: X86_64Board(), cloudInit: .disk, seedURL: nil), "local", nil),
            (InstanceCreator.guestCommandLine("root=/dev/vda1 ro", board: X86_64Board(), cloudInit: .disk, seedURL: nil, networkStage: true), "net", nil),
            (InstanceCreator.guestCommandLine("root=/dev/vda1 ro", board: X86_64Board(), cloudInit: .http, seedURL: "http://10.0.2.2:8000/", networkStage: true),
             "net", "http://10.0.2.2:8000/"),
        ]
        for (line, dsmode, seed) in cases {
            let result = try ToolRunner.run("/usr/bin/python3", ["-c", script, line])
            #expect(result.status == 0, "\(result.stderrText)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdoutText.utf8)) as? [String: Any])
            #expect(json["found"] as? Bool == true, "\(line)")
            let fill = try #require(json["fill"] as? [String: Any])
            #expect(fill["dsmode"] as? String == dsmode, "\(line)")
            #expect(fill["seedfrom"] as? String == seed, "\(line)")
        }
    }

    @Test func runOptionParsing() throws {
        #expect(try RunOptions.parseDisk("/d.img,readonly") == ("/d.img", true))
        #expect(try RunOptions.parseDisk("/d.img") == ("/d.img", false))
        #expect(InstanceCreator.macAddress(for: "a") == InstanceCreator.macAddress(for: "a"))
        #expect(InstanceCreator.macAddress(for: "a").hasPrefix("52:54:00:"))
        #expect(InstanceCreator.defaultUser() != "root")
    }
}
