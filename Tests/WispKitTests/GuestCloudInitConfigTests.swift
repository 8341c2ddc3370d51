import Foundation
import Testing
import DiskImage
import GuestInspect
import WispCore
import WispTestSupport
@testable import WispKit

/// `wisp run` hands the guest its own init-stage module list plus phone_home. Judge: the
/// test image's /etc/cloud, copied out by debugfs (e2fsprogs) and read by the host's
/// cloud-init (`util.read_conf_with_confd`, the guest's own merge), gives the same list.
@Suite struct GuestCloudInitConfigTests {
    @Test func initStageModulesOfTheTestImageMatchCloudInit() throws {
        let image = try TestImage.path()
        let inspector = try GuestInspector(disk: try DiskImageFile.open(image))
        let ours = try #require(RunIntegration.guestInitStageModules(inspector))
        #expect(ours.contains(module: "users-groups") && ours.contains(module: "ssh"))
        #expect(!ours.contains(module: "phone_home"))
        // Debian 12's cloud-init, read from its version.py; new enough for the early list.
        #expect(RunIntegration.guestCloudInitVersion(inspector) == "22.4.2")
        #expect(RunIntegration.earlyReadinessModules(inspector) == ours)
        // 22.4's phone_home still reads the DSA host key file, so the guest is handed one.
        #expect(RunIntegration.phoneHomeReadsDSAKey(inspector))

        let disk = try GuestDisk(path: image)
        let root = try #require(disk.table.partition(number: 1))
        let dir = try TemporaryDirectory("testimage-cloudcfg")
        let raw = dir.file("root.raw")
        let mib: UInt64 = 1 << 20
        try ToolRunner.check("qemu-img", ["dd", "-f", "qcow2", "-O", "raw", "bs=1M", "skip=\(root.startOffset / mib)",
                                          "count=\((root.endOffset - root.startOffset) / mib)", "if=\(image)", "of=\(raw)"])
        try ToolRunner.check("debugfs", ["-R", "rdump /etc/cloud \(dir.path)", raw])
        let script = """
            import json, sys
            from cloudinit import util
            mods = util.read_conf_with_confd(sys.argv[1]).get("cloud_init_modules")
            print(json.dumps([[m] if isinstance(m, str) else [str(x) for x in m] for m in mods]))
            """
        let result = try ToolRunner.run("/usr/bin/python3", ["-c", script, dir.file("cloud/cloud.cfg")])
        #expect(result.status == 0, "\(result.stderrText)")
        let theirs = try JSONSerialization.jsonObject(with: Data(result.stdoutText.utf8)) as? [[String]]
        #expect(ours.entries == theirs)
    }
}
